// Thin N-API layer over libbpf: objects, programs, maps, links, ring buffers
// and feature probes. Policy and convenience live in TypeScript above it.
#include <napi.h>
#include <uv.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdarg>
#include <string>
#include <vector>

namespace {

// libbpf's messages during the current call, so that errors can carry the
// verifier log instead of printing it to stderr.
// thread_local: an object may load on a worker thread (loadAsync) while
// the main thread uses libbpf for something else
thread_local std::string g_log;
thread_local bool g_capture = false;

int PrintFn(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (!g_capture) {
    if (level == LIBBPF_DEBUG || getenv("OSPREY_LIBBPF_QUIET") != nullptr) return 0;
    if (getenv("OSPREY_LIBBPF_VERBOSE") == nullptr) return 0;
    return vfprintf(stderr, fmt, args);
  }
  char buf[4096];
  int n = vsnprintf(buf, sizeof(buf), fmt, args);
  if (n > 0) g_log.append(buf, std::min<size_t>(n, sizeof(buf) - 1));
  // keep the tail: the verifier's verdict is at the end
  if (g_log.size() > (1 << 20)) g_log.erase(0, g_log.size() - (1 << 19));
  return n;
}

struct LogCapture {
  LogCapture() {
    g_log.clear();
    g_capture = true;
  }
  ~LogCapture() { g_capture = false; }
};

Napi::Error ErrnoError(Napi::Env env, const std::string& what, int err) {
  if (err < 0) err = -err;
  auto e = Napi::Error::New(env, what + ": " + strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  return e;
}

void Throw(Napi::Env env, const std::string& what, int err) {
  ErrnoError(env, what, err).ThrowAsJavaScriptException();
}

// ---------------------------------------------------------------- Link

class Link : public Napi::ObjectWrap<Link> {
 public:
  static Napi::FunctionReference ctor;
  static void Init(Napi::Env env, Napi::Object exports) {
    auto fn = DefineClass(env, "Link",
                          {InstanceMethod("destroy", &Link::Destroy),
                           InstanceMethod("destroyAsync", &Link::DestroyAsync), InstanceMethod("pin", &Link::Pin),
                           InstanceMethod("fd", &Link::Fd)});
    ctor = Napi::Persistent(fn);
    exports.Set("Link", fn);
  }
  static Napi::Object Wrap(Napi::Env env, bpf_link* link) {
    auto obj = ctor.New({});
    Unwrap(obj)->link_ = link;
    return obj;
  }
  static Napi::Object WrapTc(Napi::Env env, const bpf_tc_hook& hook, const bpf_tc_opts& opts) {
    auto obj = ctor.New({});
    auto* l = Unwrap(obj);
    l->tc_ = true;
    l->tc_hook_ = hook;
    l->tc_opts_ = opts;
    return obj;
  }
  explicit Link(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Link>(info) {}
  ~Link() { Release(); }

 private:
  void Release() {
    if (link_) {
      bpf_link__destroy(link_);
      link_ = nullptr;
    }
    if (tc_) {
      tc_opts_.flags = tc_opts_.prog_fd = tc_opts_.prog_id = 0;
      bpf_tc_detach(&tc_hook_, &tc_opts_);
      tc_ = false;
    }
  }
  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    Release();
    return info.Env().Undefined();
  }

  // Detaching a tracepoint's program waits for an RCU grace period in the
  // kernel (~70 ms on this kind of VM): on a worker thread, the event loop
  // goes on meanwhile and several links' waits overlap. The bpf_link is the
  // worker's from here on: this Link is destroyed at once as far as JS sees.
  class DestroyWorker : public Napi::AsyncWorker {
   public:
    DestroyWorker(Napi::Env env, bpf_link* link)
        : Napi::AsyncWorker(env), link_(link), deferred_(Napi::Promise::Deferred::New(env)) {}
    Napi::Promise Promise() { return deferred_.Promise(); }
    void Execute() override { bpf_link__destroy(link_); }
    void OnOK() override { deferred_.Resolve(Env().Undefined()); }

   private:
    bpf_link* link_;
    Napi::Promise::Deferred deferred_;
  };
  Napi::Value DestroyAsync(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    if (!link_) {
      // a tc attachment (a netlink request, quick) or one already destroyed
      Release();
      auto d = Napi::Promise::Deferred::New(env);
      d.Resolve(env.Undefined());
      return d.Promise();
    }
    auto* w = new DestroyWorker(env, link_);
    link_ = nullptr;
    auto promise = w->Promise();
    w->Queue();
    return promise;
  }
  Napi::Value Pin(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    if (!link_) {
      Napi::Error::New(env, "pin link: link is destroyed or not pinnable").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    std::string path = info[0].As<Napi::String>();
    int err = bpf_link__pin(link_, path.c_str());
    if (err) Throw(env, "pin link at " + path, err);
    return env.Undefined();
  }
  Napi::Value Fd(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), link_ ? bpf_link__fd(link_) : -1);
  }
  bpf_link* link_ = nullptr;
  bool tc_ = false;
  bpf_tc_hook tc_hook_{};
  bpf_tc_opts tc_opts_{};
};
Napi::FunctionReference Link::ctor;

// ---------------------------------------------------------------- Object

class Object : public Napi::ObjectWrap<Object> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    auto fn = DefineClass(env, "Object",
                          {
                              InstanceMethod("setMaxEntries", &Object::SetMaxEntries),
                              InstanceMethod("load", &Object::Load),
                              InstanceMethod("loadAsync", &Object::LoadAsync),
                              InstanceMethod("programs", &Object::Programs),
                              InstanceMethod("maps", &Object::Maps),
                              InstanceMethod("attach", &Object::Attach),
                              InstanceMethod("attachTracepoint", &Object::AttachTracepoint),
                              InstanceMethod("attachRawTracepoint", &Object::AttachRawTracepoint),
                              InstanceMethod("attachCgroup", &Object::AttachCgroup),
                              InstanceMethod("attachUprobe", &Object::AttachUprobe),
                              InstanceMethod("attachTc", &Object::AttachTc),
                              InstanceMethod("runIterator", &Object::RunIterator),
                              InstanceMethod("pinMap", &Object::PinMap),
                              InstanceMethod("reuseMap", &Object::ReuseMap),
                              InstanceMethod("skipProgram", &Object::SkipProgram),
                              InstanceMethod("close", &Object::Close),
                          });
    exports.Set("Object", fn);
  }

  // new Object(path)
  explicit Object(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Object>(info) {
    auto env = info.Env();
    std::string path = info[0].As<Napi::String>();
    LogCapture cap;
    obj_ = bpf_object__open_file(path.c_str(), nullptr);
    int err = libbpf_get_error(obj_);
    if (err) {
      obj_ = nullptr;
      auto e = ErrnoError(env, "open BPF object " + path, err);
      e.Set("log", Napi::String::New(env, g_log));
      e.ThrowAsJavaScriptException();
    }
  }
  ~Object() { Release(); }

 private:
  void Release() {
    if (obj_) {
      bpf_object__close(obj_);
      obj_ = nullptr;
    }
  }
  bool Check(Napi::Env env) {
    if (!obj_) {
      Napi::Error::New(env, "BPF object is closed").ThrowAsJavaScriptException();
      return false;
    }
    if (loading_) {
      Napi::Error::New(env, "BPF object is still loading").ThrowAsJavaScriptException();
      return false;
    }
    return true;
  }

  // The program libbpf names in "prog 'NAME': failed to load".
  static std::string FailedProgram(const std::string& log) {
    auto pos = log.rfind("prog '");
    if (pos == std::string::npos) return "";
    auto end = log.find('\'', pos + 6);
    return end == std::string::npos ? "" : log.substr(pos + 6, end - pos - 6);
  }

  static Napi::Error LoadError(Napi::Env env, int err, const std::string& log) {
    std::string prog = FailedProgram(log);
    auto e = ErrnoError(env, prog.empty() ? "load BPF object" : "load program " + prog, err);
    e.Set("program", Napi::String::New(env, prog));
    e.Set("log", Napi::String::New(env, log));
    return e;
  }

  // Verifies and loads on a libuv worker thread: the verifier can take
  // hundreds of milliseconds, during which the event loop keeps reading.
  class LoadWorker : public Napi::AsyncWorker {
   public:
    LoadWorker(Napi::Env env, Object* owner)
        : Napi::AsyncWorker(env), owner_(owner), deferred_(Napi::Promise::Deferred::New(env)) {
      owner_->Ref();
    }
    ~LoadWorker() override { owner_->Unref(); }
    Napi::Promise Promise() { return deferred_.Promise(); }
    void Execute() override {
      LogCapture cap;
      err_ = bpf_object__load(owner_->obj_);
      log_ = g_log;
    }
    void OnOK() override {
      owner_->loading_ = false;
      if (err_)
        deferred_.Reject(LoadError(Env(), err_, log_).Value());
      else
        deferred_.Resolve(Env().Undefined());
    }

   private:
    Object* owner_;
    Napi::Promise::Deferred deferred_;
    int err_ = 0;
    std::string log_;
  };
  bpf_program* Prog(Napi::Env env, const Napi::Value& name) {
    if (!Check(env)) return nullptr;
    std::string n = name.As<Napi::String>();
    auto* p = bpf_object__find_program_by_name(obj_, n.c_str());
    if (!p) Napi::Error::New(env, "no program named " + n).ThrowAsJavaScriptException();
    return p;
  }

  Napi::Value SetMaxEntries(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    if (!Check(env)) return env.Undefined();
    std::string n = info[0].As<Napi::String>();
    auto* m = bpf_object__find_map_by_name(obj_, n.c_str());
    if (!m) {
      Napi::Error::New(env, "no map named " + n).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    int err = bpf_map__set_max_entries(m, info[1].As<Napi::Number>().Uint32Value());
    if (err) Throw(env, "set max_entries of map " + n, err);
    return env.Undefined();
  }

  // load(): on failure the error has .program (the rejected program) and .log
  Napi::Value Load(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    if (!Check(env)) return env.Undefined();
    LogCapture cap;
    int err = bpf_object__load(obj_);
    if (err) LoadError(env, err, g_log).ThrowAsJavaScriptException();
    return env.Undefined();
  }

  // loadAsync(): Promise, rejected with the same error as load()
  Napi::Value LoadAsync(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    if (!Check(env)) return env.Undefined();
    auto* w = new LoadWorker(env, this);
    auto promise = w->Promise();
    loading_ = true;
    w->Queue();
    return promise;
  }

  Napi::Value Programs(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    auto arr = Napi::Array::New(env);
    if (!Check(env)) return arr;
    bpf_program* p;
    uint32_t i = 0;
    bpf_object__for_each_program(p, obj_) {
      auto o = Napi::Object::New(env);
      o.Set("name", bpf_program__name(p));
      o.Set("section", bpf_program__section_name(p));
      o.Set("type", Napi::Number::New(env, bpf_program__type(p)));
      o.Set("fd", Napi::Number::New(env, bpf_program__fd(p)));
      arr.Set(i++, o);
    }
    return arr;
  }

  Napi::Value Maps(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    auto arr = Napi::Array::New(env);
    if (!Check(env)) return arr;
    bpf_map* m;
    uint32_t i = 0;
    bpf_object__for_each_map(m, obj_) {
      auto o = Napi::Object::New(env);
      o.Set("name", bpf_map__name(m));
      o.Set("type", Napi::Number::New(env, bpf_map__type(m)));
      o.Set("fd", Napi::Number::New(env, bpf_map__fd(m)));
      o.Set("keySize", Napi::Number::New(env, bpf_map__key_size(m)));
      o.Set("valueSize", Napi::Number::New(env, bpf_map__value_size(m)));
      o.Set("maxEntries", Napi::Number::New(env, bpf_map__max_entries(m)));
      arr.Set(i++, o);
    }
    return arr;
  }

  Napi::Value Finish(Napi::Env env, bpf_link* link, const std::string& what) {
    int err = libbpf_get_error(link);
    if (err) {
      Throw(env, what, err);
      return env.Undefined();
    }
    return Link::Wrap(env, link);
  }

  // attach(prog): by section name (tp_btf/..., raw_tp/..., tracepoint/...)
  Napi::Value Attach(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    auto* p = Prog(env, info[0]);
    if (!p) return env.Undefined();
    return Finish(env, bpf_program__attach(p), std::string("attach program ") + bpf_program__name(p));
  }
  Napi::Value AttachTracepoint(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    auto* p = Prog(env, info[0]);
    if (!p) return env.Undefined();
    std::string cat = info[1].As<Napi::String>(), name = info[2].As<Napi::String>();
    LIBBPF_OPTS(bpf_tracepoint_opts, opts);
    // the cookie tells a generic program which hook of its policy fired
    if (info.Length() > 3 && info[3].IsBigInt()) {
      bool lossless;
      opts.bpf_cookie = info[3].As<Napi::BigInt>().Uint64Value(&lossless);
    }
    return Finish(env, bpf_program__attach_tracepoint_opts(p, cat.c_str(), name.c_str(), &opts),
                  "attach " + std::string(bpf_program__name(p)) + " to tracepoint " + cat + "/" + name);
  }
  Napi::Value AttachRawTracepoint(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    auto* p = Prog(env, info[0]);
    if (!p) return env.Undefined();
    std::string name = info[1].As<Napi::String>();
    return Finish(env, bpf_program__attach_raw_tracepoint(p, name.c_str()),
                  "attach " + std::string(bpf_program__name(p)) + " to raw tracepoint " + name);
  }
  // attachCgroup(prog, cgroupPath)
  Napi::Value AttachCgroup(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    auto* p = Prog(env, info[0]);
    if (!p) return env.Undefined();
    std::string path = info[1].As<Napi::String>();
    int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      Throw(env, "open cgroup " + path, errno);
      return env.Undefined();
    }
    auto* link = bpf_program__attach_cgroup(p, fd);
    close(fd);
    return Finish(env, link, "attach " + std::string(bpf_program__name(p)) + " to cgroup " + path);
  }
  // attachUprobe(prog, binaryPath, funcName, retprobe, pid)
  Napi::Value AttachUprobe(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    auto* p = Prog(env, info[0]);
    if (!p) return env.Undefined();
    std::string bin = info[1].As<Napi::String>(), func = info[2].As<Napi::String>();
    LIBBPF_OPTS(bpf_uprobe_opts, opts);
    opts.func_name = func.c_str();
    opts.retprobe = info[3].ToBoolean();
    int pid = info[4].IsNumber() ? info[4].As<Napi::Number>().Int32Value() : -1;
    return Finish(env, bpf_program__attach_uprobe_opts(p, pid, bin.c_str(), 0, &opts),
                  "attach " + std::string(bpf_program__name(p)) + " to uprobe " + bin + ":" + func);
  }
  // attachTc(prog, ifname, "ingress"|"egress")
  Napi::Value AttachTc(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    auto* p = Prog(env, info[0]);
    if (!p) return env.Undefined();
    std::string ifname = info[1].As<Napi::String>(), dir = info[2].As<Napi::String>();
    unsigned idx = if_nametoindex(ifname.c_str());
    if (!idx) {
      Throw(env, "attach tc: interface " + ifname, errno);
      return env.Undefined();
    }
    LIBBPF_OPTS(bpf_tc_hook, hook);
    hook.ifindex = idx;
    hook.attach_point = dir == "egress" ? BPF_TC_EGRESS : BPF_TC_INGRESS;
    int err = bpf_tc_hook_create(&hook);
    if (err && err != -EEXIST) {
      Throw(env, "create clsact qdisc on " + ifname, err);
      return env.Undefined();
    }
    LIBBPF_OPTS(bpf_tc_opts, opts);
    opts.prog_fd = bpf_program__fd(p);
    err = bpf_tc_attach(&hook, &opts);
    if (err) {
      Throw(env, "attach " + std::string(bpf_program__name(p)) + " to tc " + dir + " of " + ifname, err);
      return env.Undefined();
    }
    return Link::WrapTc(env, hook, opts);
  }
  // Reads an iterator to its end on a libuv worker thread: the read runs
  // the program over every object (every TCP socket of the host, say), which
  // takes a while on a busy host; the event loop keeps reading meanwhile.
  class IterWorker : public Napi::AsyncWorker {
   public:
    IterWorker(Napi::Env env, bpf_link* link, int fd, std::string what)
        : Napi::AsyncWorker(env),
          link_(link),
          fd_(fd),
          what_(std::move(what)),
          deferred_(Napi::Promise::Deferred::New(env)) {}
    ~IterWorker() override {
      close(fd_);
      bpf_link__destroy(link_);
    }
    Napi::Promise Promise() { return deferred_.Promise(); }
    void Execute() override {
      char buf[4096];
      for (;;) {
        ssize_t n = read(fd_, buf, sizeof(buf));
        if (n > 0) {
          out_.append(buf, n);
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) err_ = errno;
        break;
      }
    }
    void OnOK() override {
      if (err_)
        deferred_.Reject(ErrnoError(Env(), what_, err_).Value());
      else
        deferred_.Resolve(Napi::Buffer<char>::Copy(Env(), out_.data(), out_.size()));
    }

   private:
    bpf_link* link_;
    int fd_;
    std::string what_;
    Napi::Promise::Deferred deferred_;
    std::string out_;
    int err_ = 0;
  };
  // runIterator(prog): attach an iter/ program and read the iterator to its
  // end on a worker thread (which runs the program over every object), then
  // detach; resolves to what the program wrote
  Napi::Value RunIterator(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    auto* p = Prog(env, info[0]);
    if (!p) return env.Undefined();
    std::string what = std::string("run iterator ") + bpf_program__name(p);
    auto* link = bpf_program__attach_iter(p, nullptr);
    int err = libbpf_get_error(link);
    if (err) {
      Throw(env, what, err);
      return env.Undefined();
    }
    int fd = bpf_iter_create(bpf_link__fd(link));
    if (fd < 0) {
      err = errno;
      bpf_link__destroy(link);
      Throw(env, what, err);
      return env.Undefined();
    }
    auto* w = new IterWorker(env, link, fd, what);
    auto promise = w->Promise();
    w->Queue();
    return promise;
  }
  Napi::Value PinMap(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    if (!Check(env)) return env.Undefined();
    std::string n = info[0].As<Napi::String>(), path = info[1].As<Napi::String>();
    auto* m = bpf_object__find_map_by_name(obj_, n.c_str());
    if (!m) {
      Napi::Error::New(env, "no map named " + n).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    int err = bpf_map__pin(m, path.c_str());
    if (err) Throw(env, "pin map " + n + " at " + path, err);
    return env.Undefined();
  }
  // reuseMap(name, fd): before load, make the object use an existing map
  // (shared between objects, e.g. the process table)
  Napi::Value ReuseMap(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    if (!Check(env)) return env.Undefined();
    std::string n = info[0].As<Napi::String>();
    auto* m = bpf_object__find_map_by_name(obj_, n.c_str());
    if (!m) {
      Napi::Error::New(env, "no map named " + n).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    int err = bpf_map__reuse_fd(m, info[1].As<Napi::Number>().Int32Value());
    if (err) Throw(env, "reuse map " + n, err);
    return env.Undefined();
  }
  // skipProgram(name): before load, leave a program out (its hook is not in
  // this kernel); the rest of the object loads without it
  Napi::Value SkipProgram(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    auto* p = Prog(env, info[0]);
    if (!p) return env.Undefined();
    int err = bpf_program__set_autoload(p, false);
    if (err) Throw(env, "leave out program " + std::string(info[0].As<Napi::String>()), err);
    return env.Undefined();
  }
  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (loading_) {
      Napi::Error::New(info.Env(), "cannot close a BPF object while it loads").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    Release();
    return info.Env().Undefined();
  }

  bpf_object* obj_ = nullptr;
  bool loading_ = false;
};

// ---------------------------------------------------------------- maps (by fd)

// mapLookup(fd, key, valueOut) -> boolean
Napi::Value MapLookup(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  auto key = info[1].As<Napi::Buffer<uint8_t>>();
  auto val = info[2].As<Napi::Buffer<uint8_t>>();
  if (bpf_map_lookup_elem(fd, key.Data(), val.Data()) == 0) return Napi::Boolean::New(env, true);
  if (errno == ENOENT) return Napi::Boolean::New(env, false);
  Throw(env, "map lookup", errno);
  return env.Undefined();
}

// mapUpdate(fd, key, value, flags)
Napi::Value MapUpdate(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  auto key = info[1].As<Napi::Buffer<uint8_t>>();
  auto val = info[2].As<Napi::Buffer<uint8_t>>();
  uint64_t flags = info[3].IsNumber() ? static_cast<uint64_t>(info[3].As<Napi::Number>().Int64Value()) : uint64_t(BPF_ANY);
  if (bpf_map_update_elem(fd, key.Data(), val.Data(), flags)) Throw(env, "map update", errno);
  return env.Undefined();
}

// mapDelete(fd, key) -> boolean (false when absent)
Napi::Value MapDelete(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  auto key = info[1].As<Napi::Buffer<uint8_t>>();
  if (bpf_map_delete_elem(fd, key.Data()) == 0) return Napi::Boolean::New(env, true);
  if (errno == ENOENT) return Napi::Boolean::New(env, false);
  Throw(env, "map delete", errno);
  return env.Undefined();
}

// mapNextKey(fd, key|null, nextOut) -> boolean (false at the end)
Napi::Value MapNextKey(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  const void* key = info[1].IsBuffer() ? info[1].As<Napi::Buffer<uint8_t>>().Data() : nullptr;
  auto next = info[2].As<Napi::Buffer<uint8_t>>();
  if (bpf_map_get_next_key(fd, key, next.Data()) == 0) return Napi::Boolean::New(env, true);
  if (errno == ENOENT) return Napi::Boolean::New(env, false);
  Throw(env, "map next key", errno);
  return env.Undefined();
}

// mapLookupBatch(fd, inBatch|null, outBatch, keys, values, count) -> {count, done}
Napi::Value MapLookupBatch(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  void* in = info[1].IsBuffer() ? info[1].As<Napi::Buffer<uint8_t>>().Data() : nullptr;
  auto out = info[2].As<Napi::Buffer<uint8_t>>();
  auto keys = info[3].As<Napi::Buffer<uint8_t>>();
  auto vals = info[4].As<Napi::Buffer<uint8_t>>();
  uint32_t count = info[5].As<Napi::Number>().Uint32Value();
  int err = bpf_map_lookup_batch(fd, in, out.Data(), keys.Data(), vals.Data(), &count, nullptr);
  bool done = false;
  if (err) {
    if (errno == ENOENT)
      done = true;
    else {
      Throw(env, "map lookup batch", errno);
      return env.Undefined();
    }
  }
  auto r = Napi::Object::New(env);
  r.Set("count", Napi::Number::New(env, count));
  r.Set("done", Napi::Boolean::New(env, done));
  return r;
}

// a batch operation's failure: errno, and `done`, the entries it did before it
void ThrowBatch(Napi::Env env, const std::string& what, int err, uint32_t done) {
  auto e = ErrnoError(env, what, err);
  e.Set("done", Napi::Number::New(env, done));
  e.ThrowAsJavaScriptException();
}

// mapUpdateBatch(fd, keys, values, count, flags): count entries, keys and values each packed end
// to end, written in one syscall; a failure throws with errno and `done`, the entries written
// before it
Napi::Value MapUpdateBatch(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  auto keys = info[1].As<Napi::Buffer<uint8_t>>();
  auto vals = info[2].As<Napi::Buffer<uint8_t>>();
  uint32_t count = info[3].As<Napi::Number>().Uint32Value();
  uint64_t flags = info[4].IsNumber() ? static_cast<uint64_t>(info[4].As<Napi::Number>().Int64Value()) : uint64_t(BPF_ANY);
  LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = flags);
  if (bpf_map_update_batch(fd, keys.Data(), vals.Data(), &count, &opts)) ThrowBatch(env, "map update batch", errno, count);
  return env.Undefined();
}

// mapDeleteBatch(fd, keys, count): as mapUpdateBatch, for deletes
Napi::Value MapDeleteBatch(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  auto keys = info[1].As<Napi::Buffer<uint8_t>>();
  uint32_t count = info[2].As<Napi::Number>().Uint32Value();
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  if (bpf_map_delete_batch(fd, keys.Data(), &count, &opts)) ThrowBatch(env, "map delete batch", errno, count);
  return env.Undefined();
}

// mapInfo(fd) -> {id, name, type, keySize, valueSize, maxEntries}
Napi::Value MapInfo(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  bpf_map_info mi{};
  uint32_t len = sizeof(mi);
  if (bpf_obj_get_info_by_fd(fd, &mi, &len)) {
    Throw(env, "map info", errno);
    return env.Undefined();
  }
  auto o = Napi::Object::New(env);
  o.Set("id", mi.id);
  o.Set("name", mi.name);
  o.Set("type", mi.type);
  o.Set("keySize", mi.key_size);
  o.Set("valueSize", mi.value_size);
  o.Set("maxEntries", mi.max_entries);
  return o;
}

// progInfo(fd) -> {id, name, type, runCount, runTimeNs, verifiedInsns}
Napi::Value ProgInfo(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  bpf_prog_info pi{};
  uint32_t len = sizeof(pi);
  if (bpf_obj_get_info_by_fd(fd, &pi, &len)) {
    Throw(env, "program info", errno);
    return env.Undefined();
  }
  auto o = Napi::Object::New(env);
  o.Set("id", pi.id);
  o.Set("name", pi.name);
  o.Set("type", pi.type);
  o.Set("runCount", Napi::Number::New(env, static_cast<double>(pi.run_cnt)));
  o.Set("runTimeNs", Napi::Number::New(env, static_cast<double>(pi.run_time_ns)));
  o.Set("verifiedInsns", pi.verified_insns);
  return o;
}

// enableStats() -> fd; run-time statistics stay on while the fd is open
Napi::Value EnableStats(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
  if (fd < 0) {
    Throw(env, "enable BPF run-time statistics", errno);
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  close(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

// Raise a socket's send buffer past net.core.wmem_max (SO_SNDBUFFORCE needs
// CAP_NET_ADMIN; without it, SO_SNDBUF up to the limit). Returns the size the
// kernel set (it doubles the request for its own bookkeeping).
Napi::Value SetSendBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int want = info[1].As<Napi::Number>().Int32Value();
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof want) != 0 &&
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof want) != 0) {
    Napi::Error::New(env, std::string("setsockopt(SO_SNDBUF): ") + strerror(errno)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int got = 0;
  socklen_t len = sizeof got;
  if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &got, &len) != 0) got = 0;
  return Napi::Number::New(env, got);
}

// ---------------------------------------------------------------- probes

Napi::Value ProbeProgType(const Napi::CallbackInfo& info) {
  int r = libbpf_probe_bpf_prog_type(static_cast<bpf_prog_type>(info[0].As<Napi::Number>().Int32Value()), nullptr);
  return Napi::Boolean::New(info.Env(), r == 1);
}
Napi::Value ProbeMapType(const Napi::CallbackInfo& info) {
  int r = libbpf_probe_bpf_map_type(static_cast<bpf_map_type>(info[0].As<Napi::Number>().Int32Value()), nullptr);
  return Napi::Boolean::New(info.Env(), r == 1);
}
Napi::Value ProbeHelper(const Napi::CallbackInfo& info) {
  int r = libbpf_probe_bpf_helper(static_cast<bpf_prog_type>(info[0].As<Napi::Number>().Int32Value()),
                                  static_cast<bpf_func_id>(info[1].As<Napi::Number>().Int32Value()), nullptr);
  return Napi::Boolean::New(info.Env(), r == 1);
}

// ---------------------------------------------------------------- ring buffer

// Reads a BPF ring buffer on the libuv loop. On each wake-up it drains every
// ready record into one Buffer laid out as [u32 len][u32 pad][record, padded
// to 8] ... and calls the JS callback once with (buffer, count).
//
// Wake-up coalescing: with a hold-off of H milliseconds (0 = off), a wake-up
// that delivered records stops watching the ring's fd and reads it again H
// later, so records that arrive close together cross into JS as one batch.
// A read that finds nothing goes back to waking on the fd. An idle ring is
// therefore never read on a timer, the first record after a quiet spell is
// delivered at once, and under load records wait at most H before they are
// read. It bounds wake-ups to 1/H per second.
//
// With the ring's wake-up word (wakeMapFd, bpf/include/ringwake.bpf.h) the
// programs also know when we wait: the kernel otherwise raises its wake-up
// (an interrupt of the CPU that posted the record, a VM exit on a guest) for
// the first record after every read, also while we hold off and would read
// anyway.
class RingReader : public Napi::ObjectWrap<RingReader> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    auto fn = DefineClass(env, "RingReader",
                          {InstanceMethod("close", &RingReader::Close), InstanceMethod("drain", &RingReader::Drain),
                           InstanceMethod("pending", &RingReader::Pending)});
    exports.Set("RingReader", fn);
  }
  // new RingReader(mapFd, callback, holdoffMs = 0, wakeMapFd = -1)
  explicit RingReader(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RingReader>(info) {
    auto env = info.Env();
    int fd = info[0].As<Napi::Number>().Int32Value();
    cb_ = Napi::Persistent(info[1].As<Napi::Function>());
    if (info.Length() > 2 && info[2].IsNumber()) {
      double ms = info[2].As<Napi::Number>().DoubleValue();
      holdoff_ms_ = ms >= 1 ? static_cast<uint64_t>(ms) : 0;
    }
    rb_ = ring_buffer__new(fd, &RingReader::OnRecord, this, nullptr);
    int err = libbpf_get_error(rb_);
    if (err) {
      rb_ = nullptr;
      Throw(env, "open ring buffer", err);
      return;
    }
    // the ring's wake-up word (bpf/include/ringwake.bpf.h), when it has one
    if (info.Length() > 3 && info[3].IsNumber()) {
      int wfd = info[3].As<Napi::Number>().Int32Value();
      if (wfd >= 0) {
        void* m = mmap(nullptr, sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE, MAP_SHARED, wfd, 0);
        if (m == MAP_FAILED) {
          int e = errno;
          ring_buffer__free(rb_);
          rb_ = nullptr;
          Throw(env, "map the ring's wake-up word", -e);
          return;
        }
        waits_ = static_cast<uint64_t*>(m);
        // it starts waiting on the fd
        SetWaits(kReaderWaits);
      }
    }
    // the ring's positions, read-only, for its depth (pending()); a reader works without them
    long page = sysconf(_SC_PAGESIZE);
    void* cons = mmap(nullptr, page, PROT_READ, MAP_SHARED, fd, 0);
    void* prod = mmap(nullptr, page, PROT_READ, MAP_SHARED, fd, page);
    if (cons != MAP_FAILED && prod != MAP_FAILED) {
      consumer_pos_ = static_cast<const uint64_t*>(cons);
      producer_pos_ = static_cast<const uint64_t*>(prod);
    } else {
      if (cons != MAP_FAILED) munmap(cons, page);
      if (prod != MAP_FAILED) munmap(prod, page);
    }
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    poll_ = new uv_poll_t;
    uv_poll_init(loop, poll_, ring_buffer__epoll_fd(rb_));
    poll_->data = this;
    if (holdoff_ms_ > 0) {
      timer_ = new uv_timer_t;
      uv_timer_init(loop, timer_);
      timer_->data = this;
    }
    uv_poll_start(poll_, UV_READABLE, &RingReader::OnReadable);
    Ref();  // alive while polling
  }
  ~RingReader() { Stop(); }

 private:
  static int OnRecord(void* ctx, void* data, size_t size) {
    auto* self = static_cast<RingReader*>(ctx);
    uint32_t hdr[2] = {static_cast<uint32_t>(size), 0};
    auto& b = self->batch_;
    size_t at = b.size();
    size_t padded = (size + 7) & ~size_t(7);
    b.resize(at + sizeof(hdr) + padded);
    memcpy(b.data() + at, hdr, sizeof(hdr));
    memcpy(b.data() + at + sizeof(hdr), data, size);
    self->count_++;
    return 0;
  }
  static void OnReadable(uv_poll_t* h, int status, int events) {
    auto* self = static_cast<RingReader*>(h->data);
    if (!self->rb_) return;
    self->ReadAndHold();
  }
  static void OnHoldoff(uv_timer_t* t) {
    auto* self = static_cast<RingReader*>(t->data);
    if (!self->rb_) return;
    self->ReadAndHold();
  }
  // Deliver what is ready; with a hold-off, wait before the next read while
  // records keep coming, and go back to the fd when a read finds none.
  void ReadAndHold() {
    Napi::HandleScope scope(Env());
    // the callback may close this reader and drop the last JS reference to it:
    // keep it alive until this function is done with its fields
    Ref();
    // reading now: records that land meanwhile need not wake us
    SetWaits(kReaderBusy);
    reading_ = true;
    uint32_t n = Deliver(true);
    reading_ = false;
    ReadAndHoldAfter(n);
    Unref();
  }
  void ReadAndHoldAfter(uint32_t n) {
    if (!rb_) return;  // closed by the callback
    if (!timer_) {
      // no hold-off: always waiting on the fd; the next record wakes us
      WaitOnFd(true);
      return;
    }
    if (n > 0) {
      if (polling_) {
        uv_poll_stop(poll_);
        polling_ = false;
      }
      uv_timer_start(timer_, &RingReader::OnHoldoff, holdoff_ms_, 0);
    } else {
      // nothing to read: wait on the fd (also after a wake-up that found
      // nothing, which ReadAndHold marked busy: the word must say we wait)
      if (!polling_) {
        uv_poll_start(poll_, UV_READABLE, &RingReader::OnReadable);
        polling_ = true;
      }
      SetWaits(kReaderWaits);
      // a record committed between the read and the re-arm woke no one: look once more
      if (Deliver(true) > 0 && rb_) {
        SetWaits(kReaderBusy);
        uv_poll_stop(poll_);
        polling_ = false;
        uv_timer_start(timer_, &RingReader::OnHoldoff, holdoff_ms_, 0);
      }
    }
  }
  // Wait on the fd: say so in the word, then look at the ring once more.
  // A look that finds records says it again and looks again: their programs
  // may have taken the word (to wake us) and the look may have read their
  // wake-up with them, and a wake-up read before the loop sees it wakes no
  // one; the word left busy, no record would wake us again. Returns the
  // records delivered.
  uint32_t WaitOnFd(bool fromLoop) {
    uint32_t total = 0;
    while (rb_ && SetWaits(kReaderWaits)) {
      uint32_t n = Deliver(fromLoop);
      if (n == 0) break;
      total += n;
    }
    return total;
  }
  // Tell the ring's programs whether a record must wake us (false: the ring
  // has no wake-up word, the kernel decides). Waiting is set before the last
  // look at the ring, with a full barrier between: a record committed before
  // the look is seen by it, one committed after sees the word.
  bool SetWaits(uint64_t v) {
    if (!waits_) return false;
    __atomic_store_n(waits_, v, __ATOMIC_SEQ_CST);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return true;
  }
  // Consume whatever is ready and hand it to JS; returns the count. From the
  // loop (fromLoop), the callback runs as a macrotask: promise jobs and
  // nextTicks it queues run before control goes back to the loop.
  uint32_t Deliver(bool fromLoop) {
    batch_.clear();
    count_ = 0;
    ring_buffer__consume(rb_);
    uint32_t n = count_;
    if (n == 0) return 0;
    auto env = Env();
    auto buf = Napi::Buffer<uint8_t>::Copy(env, batch_.data(), batch_.size());
    // keep the scratch vector from growing without bound after a burst
    if (batch_.capacity() > (8u << 20)) std::vector<uint8_t>().swap(batch_);
    if (fromLoop) {
      try {
        cb_.MakeCallback(env.Global(), {buf, Napi::Number::New(env, n)});
      } catch (const Napi::Error& e) {
        // nothing above us on the stack to take it: the process's uncaughtException
        napi_fatal_exception(env, e.Value());
      }
    } else {
      cb_.Call({buf, Napi::Number::New(env, n)});
    }
    return n;
  }
  void Stop() {
    if (poll_) {
      uv_poll_stop(poll_);
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      poll_ = nullptr;
    }
    if (timer_) {
      uv_timer_stop(timer_);
      uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
      timer_ = nullptr;
    }
    if (rb_) {
      ring_buffer__free(rb_);
      rb_ = nullptr;
    }
    if (consumer_pos_) {
      long page = sysconf(_SC_PAGESIZE);
      munmap(const_cast<uint64_t*>(consumer_pos_), page);
      munmap(const_cast<uint64_t*>(producer_pos_), page);
      consumer_pos_ = producer_pos_ = nullptr;
    }
    if (waits_) {
      // no reader any more: the kernel's own wake-ups, should anyone read on
      __atomic_store_n(waits_, kKernelWakes, __ATOMIC_SEQ_CST);
      munmap(waits_, sysconf(_SC_PAGESIZE));
      waits_ = nullptr;
    }
  }
  Napi::Value Close(const Napi::CallbackInfo& info) {
    bool was = rb_ != nullptr;
    Stop();
    if (was) Unref();
    return info.Env().Undefined();
  }
  // pending(): bytes the ring's programs have posted and we have not consumed
  // (record headers included); -1 when closed or the positions are not mapped
  Napi::Value Pending(const Napi::CallbackInfo& info) {
    if (!rb_ || !consumer_pos_) return Napi::Number::New(info.Env(), -1);
    uint64_t prod = __atomic_load_n(producer_pos_, __ATOMIC_ACQUIRE);
    uint64_t cons = __atomic_load_n(consumer_pos_, __ATOMIC_ACQUIRE);
    return Napi::Number::New(info.Env(), static_cast<double>(prod >= cons ? prod - cons : 0));
  }
  // drain(): deliver what is ready now, synchronously (on shutdown, and
  // the process sensor's before each batch of a policy's events). A drain
  // while we wait on the fd may take records whose programs took the word to
  // wake us: we say again that we wait. During a read (from its callback)
  // the read's end decides.
  Napi::Value Drain(const Napi::CallbackInfo& info) {
    uint32_t n = rb_ ? Deliver(false) : 0;
    if (polling_ && !reading_) n += WaitOnFd(false);
    return Napi::Number::New(info.Env(), n);
  }

  // the values of the wake-up word (bpf/include/ringwake.bpf.h)
  static constexpr uint64_t kKernelWakes = 0, kReaderBusy = 1, kReaderWaits = 2;
  uint64_t* waits_ = nullptr;
  const uint64_t* consumer_pos_ = nullptr;
  const uint64_t* producer_pos_ = nullptr;
  ring_buffer* rb_ = nullptr;
  uv_poll_t* poll_ = nullptr;
  uv_timer_t* timer_ = nullptr;
  bool polling_ = true;
  // inside ReadAndHold's delivery (its callback may drain)
  bool reading_ = false;
  uint64_t holdoff_ms_ = 0;
  Napi::FunctionReference cb_;
  std::vector<uint8_t> batch_;
  uint32_t count_ = 0;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  libbpf_set_print(PrintFn);
  libbpf_set_strict_mode(LIBBPF_STRICT_ALL);
  Link::Init(env, exports);
  Object::Init(env, exports);
  RingReader::Init(env, exports);
  exports.Set("mapLookup", Napi::Function::New(env, MapLookup));
  exports.Set("mapUpdate", Napi::Function::New(env, MapUpdate));
  exports.Set("mapDelete", Napi::Function::New(env, MapDelete));
  exports.Set("mapNextKey", Napi::Function::New(env, MapNextKey));
  exports.Set("mapLookupBatch", Napi::Function::New(env, MapLookupBatch));
  exports.Set("mapUpdateBatch", Napi::Function::New(env, MapUpdateBatch));
  exports.Set("mapDeleteBatch", Napi::Function::New(env, MapDeleteBatch));
  exports.Set("mapInfo", Napi::Function::New(env, MapInfo));
  exports.Set("progInfo", Napi::Function::New(env, ProgInfo));
  exports.Set("enableStats", Napi::Function::New(env, EnableStats));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("setSendBuffer", Napi::Function::New(env, SetSendBuffer));
  exports.Set("probeProgType", Napi::Function::New(env, ProbeProgType));
  exports.Set("probeMapType", Napi::Function::New(env, ProbeMapType));
  exports.Set("probeHelper", Napi::Function::New(env, ProbeHelper));
  return exports;
}

}  // namespace

NODE_API_MODULE(osprey, Init)

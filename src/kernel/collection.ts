import { closeSync, constants, existsSync, openSync, statSync } from 'node:fs';
import path from 'node:path';
import { KernelError } from './errors.js';
import { BpfMap, type Codec } from './map.js';
import {
  type NativeLink,
  type NativeMapInfo,
  type NativeObject,
  type NativeProgramInfo,
  native,
} from './native.js';

/** An attachment of a program to a hook; destroy() detaches it. */
export interface Link {
  readonly program: string;
  readonly hook: string;
  destroy(): void;
  /**
   * Detach off the event loop: the link is gone from its collection at once,
   * and the promise settles once the kernel has detached the program.
   */
  destroyAsync(): Promise<void>;
  pin(path: string): void;
}

export interface CollectionOptions {
  /** map name -> max_entries, applied before load */
  maxEntries?: Record<string, number>;
  /** map name -> fd of an existing map the object should use instead of making its own */
  reuseMaps?: Record<string, number>;
  /** programs not to load (their hook is missing from this kernel) */
  skipPrograms?: readonly string[];
}

const open = new Set<Collection>();

/**
 * A loaded BPF object: its programs, maps and the links made from it.
 * close() detaches every link and frees the object; collections still open
 * when the process exits or is told to stop are closed for it.
 */
export class Collection {
  readonly name: string;
  private obj: NativeObject | undefined;
  private readonly links = new Set<Link>();
  private mapInfos = new Map<string, NativeMapInfo>();
  private progInfos = new Map<string, NativeProgramInfo>();

  private constructor(name: string, obj: NativeObject) {
    this.name = name;
    this.obj = obj;
  }

  /** Open and load an object file; on a verifier rejection the error carries the log's tail. */
  static load(file: string, opts: CollectionOptions = {}): Collection {
    const obj = Collection.open(file, opts);
    try {
      obj.load();
    } catch (err) {
      obj.close();
      throw new KernelError(`load ${file}`, err);
    }
    return Collection.adopt(file, obj);
  }

  /**
   * As load(), with the verifier run on a worker thread, so the event loop
   * (and every ring-buffer reader on it) keeps going meanwhile.
   */
  static async loadAsync(file: string, opts: CollectionOptions = {}): Promise<Collection> {
    const obj = Collection.open(file, opts);
    try {
      await obj.loadAsync();
    } catch (err) {
      obj.close();
      throw new KernelError(`load ${file}`, err);
    }
    return Collection.adopt(file, obj);
  }

  private static open(file: string, opts: CollectionOptions): NativeObject {
    if (!existsSync(file)) {
      throw new Error(`BPF object ${file} does not exist; run scripts/setup.sh to build it`);
    }
    let obj: NativeObject;
    try {
      obj = new (native().Object)(file);
    } catch (err) {
      throw new KernelError(`open ${file}`, err);
    }
    try {
      for (const [map, n] of Object.entries(opts.maxEntries ?? {})) obj.setMaxEntries(map, n);
      for (const [map, fd] of Object.entries(opts.reuseMaps ?? {})) obj.reuseMap(map, fd);
      for (const prog of opts.skipPrograms ?? []) obj.skipProgram(prog);
    } catch (err) {
      obj.close();
      throw new KernelError(`load ${file}`, err);
    }
    return obj;
  }

  private static adopt(file: string, obj: NativeObject): Collection {
    const c = new Collection(file, obj);
    for (const m of obj.maps()) c.mapInfos.set(m.name, m);
    for (const p of obj.programs()) c.progInfos.set(p.name, p);
    open.add(c);
    installExitHooks();
    return c;
  }

  programs(): NativeProgramInfo[] {
    return [...this.progInfos.values()];
  }

  mapInfo(name: string): NativeMapInfo {
    const m = this.mapInfos.get(name);
    if (!m) throw new Error(`${this.name}: no map named ${name}`);
    return m;
  }

  map<K, V>(name: string, key: Codec<K>, value: Codec<V>): BpfMap<K, V> {
    return new BpfMap(this.mapInfo(name), key, value);
  }

  maps(): NativeMapInfo[] {
    return [...this.mapInfos.values()];
  }

  /** Attach by the program's section (tp_btf/..., raw_tp/..., tracepoint/...). */
  attach(prog: string): Link {
    return this.track(prog, this.section(prog), (o) => o.attach(prog));
  }

  /** Attach to tracefs tracepoint category/name; the program reads `cookie` with bpf_get_attach_cookie(). */
  attachTracepoint(prog: string, category: string, name: string, cookie?: bigint): Link {
    return this.track(prog, `tracepoint/${category}/${name}`, (o) =>
      o.attachTracepoint(prog, category, name, cookie),
    );
  }

  attachRawTracepoint(prog: string, name: string): Link {
    return this.track(prog, `raw_tp/${name}`, (o) => o.attachRawTracepoint(prog, name));
  }

  attachCgroup(prog: string, cgroupPath: string): Link {
    return this.track(prog, `cgroup ${cgroupPath}`, (o) => o.attachCgroup(prog, cgroupPath));
  }

  attachUprobe(
    prog: string,
    binary: string,
    func: string,
    opts: { retprobe?: boolean; pid?: number } = {},
  ): Link {
    return this.track(prog, `uprobe ${binary}:${func}`, (o) =>
      o.attachUprobe(prog, binary, func, opts.retprobe ?? false, opts.pid ?? -1),
    );
  }

  attachTc(prog: string, ifname: string, direction: 'ingress' | 'egress'): Link {
    return this.track(prog, `tc ${direction} ${ifname}`, (o) => o.attachTc(prog, ifname, direction));
  }

  /**
   * Put a cgroup v2 directory in a slot of a BPF_MAP_TYPE_CGROUP_ARRAY, for
   * bpf_current_task_under_cgroup(). The kernel keeps its own reference.
   */
  setCgroup(map: string, slot: number, dir: string): void {
    const abs = path.resolve(dir);
    let fd: number;
    try {
      if (!statSync(abs).isDirectory()) throw new Error('not a directory');
      fd = openSync(abs, constants.O_RDONLY | constants.O_DIRECTORY);
    } catch (err) {
      throw new Error(`cgroup ${abs}: ${(err as Error).message}`);
    }
    try {
      const key = Buffer.alloc(4);
      key.writeUInt32LE(slot, 0);
      const val = Buffer.alloc(4);
      val.writeUInt32LE(fd, 0);
      native().mapUpdate(this.mapInfo(map).fd, key, val, 0);
    } catch (err) {
      throw new KernelError(`${this.name}: put cgroup ${abs} in map ${map}`, err);
    } finally {
      closeSync(fd);
    }
  }

  pinMap(map: string, path: string): void {
    try {
      this.object().pinMap(map, path);
    } catch (err) {
      throw new KernelError(`${this.name}: pin map ${map}`, err);
    }
  }

  /** Links currently attached from this collection. */
  attached(): Link[] {
    return [...this.links];
  }

  /**
   * Run an iter/ program once over every object it iterates (attach, read
   * the iterator to its end on a libuv worker thread, detach); resolves to
   * what the program wrote with bpf_seq_write/bpf_seq_printf. Throws when it
   * cannot be attached. Nothing stays attached, also when the collection is
   * closed meanwhile.
   */
  runIterator(prog: string): Promise<Buffer> {
    let read: Promise<Buffer>;
    try {
      read = this.object().runIterator(prog);
    } catch (err) {
      // it could not be attached: thrown here, not through the promise
      throw new KernelError(`run iterator ${prog}`, err);
    }
    return read.catch((err) => {
      throw new KernelError(`run iterator ${prog}`, err);
    });
  }

  /** Detach every link and free the object. Safe to call twice. */
  close(): void {
    for (const l of this.links) l.destroy();
    this.links.clear();
    this.obj?.close();
    this.obj = undefined;
    open.delete(this);
  }

  get closed(): boolean {
    return this.obj === undefined;
  }

  private section(prog: string): string {
    return this.progInfos.get(prog)?.section ?? prog;
  }

  private object(): NativeObject {
    if (!this.obj) throw new Error(`${this.name} is closed`);
    return this.obj;
  }

  private track(prog: string, hook: string, make: (o: NativeObject) => NativeLink): Link {
    let nl: NativeLink;
    try {
      nl = make(this.object());
    } catch (err) {
      throw new KernelError(`attach ${prog} to ${hook}`, err);
    }
    const links = this.links;
    const link: Link = {
      program: prog,
      hook,
      destroy() {
        nl.destroy();
        links.delete(link);
      },
      destroyAsync() {
        links.delete(link);
        return nl.destroyAsync();
      },
      pin(path: string) {
        nl.pin(path);
      },
    };
    links.add(link);
    return link;
  }
}

/** Close every open collection: detaches all programs this process attached. */
export function closeAll(): void {
  for (const c of [...open]) c.close();
}

let hooked = false;

function installExitHooks(): void {
  if (hooked) return;
  hooked = true;
  // 'exit' runs for normal ends and process.exit(); signals are left to the
  // agent, which stops cleanly and then exits. If the process dies any other
  // way the kernel closes its fds, and with them every unpinned link.
  process.on('exit', closeAll);
}

// The exec-storm benchmark: how much does watching every exec cost?
//
// One run measures an exec storm (bench/exec/storm.c fork+exec'ing a do-nothing
// static binary) under four modes, interleaved round by round so slow drifts
// of a shared machine hit every mode alike:
//   a  no observer (the baseline every ratio is against)
//   b  Osprey exporting every event to a JSON-lines file
//   c  auditd logging every execve
//   d  bpftrace printing every execve's filename to a file
// See bench/README.md for the method. Run it through bench/exec/run.sh.

import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  createReadStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  Cleanup,
  childPids,
  cpuSeconds,
  irqWorkInterrupts,
  isAlive,
  killAndWaitSync,
  MemorySampler,
  median,
  otherObservers,
  pidsByComm,
  run,
  runBenchmark,
  saveResults,
  sleep,
  systemCpu,
  which,
} from '../lib/proc.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RESULTS = path.join(REPO, 'bench/results');
const TINY_NAME = 'osprey_bench_tiny';
const CANARY_NAME = 'osprey_bench_canary';
const DONE_NAME = 'osprey_bench_done';
const WARMUP_NAME = 'osprey_bench_warmup';
const AUDIT_KEY = 'osprey_bench';
const AUDIT_RULE = ['always,exit', '-F', 'arch=b64', '-S', 'execve', '-k', AUDIT_KEY];
const TARGETS = { overheadPct: 5, p99Ms: 10, rssMb: 150 };
/** busy cores in the idle second before a storm that count as a quiet machine */
const QUIET_CORES = 0.25;
/** share of the machine's CPU taken by others during a storm that makes it a contended run */
const CONTENDED_FRACTION = 0.15;

const MODES = {
  a: 'no agent (baseline)',
  b: 'Osprey → export file',
  c: 'auditd (execve rule)',
  d: 'bpftrace (printf per execve)',
  e: 'Osprey → export file + event store',
};
/** Modes that run Osprey's agent; (b) is the one the targets are for. */
const OSPREY_MODES = ['b', 'e'];

const USAGE = `usage: bench/exec/run.sh [--execs N] [--warmup-execs N] [--repeat R] [--parallel P] [--modes abcd] [--quiet-wait S] [--keep]

  --execs N      execs per storm (default 20000, at least 20000 for a reported run)
  --warmup-execs N  execs of a copy of the binary before each measured storm, in every
                 mode, not measured and not counted (default 20000; 0: none)
  --repeat R     rounds; each round runs every mode once (default 3)
  --parallel P   children the storm keeps in flight (default 2 = the cores here)
  --modes LIST   which modes to run, e.g. "ab" (default abcd; e = Osprey with its
                 SQLite event store on, as the agent's defaults have it)
  --quiet-wait S before each storm, wait up to S seconds (default 60) for the machine
                 to go quiet (≤ 0.25 busy cores); the load seen is reported either way
  --retries K    run a storm again, up to K times (default 2), when other work took more
                 than 15 % of the machine's CPU during it
  --keep         keep the scratch directory (export files, logs) for inspection`;

const cleanup = new Cleanup();
const log = (msg) => console.error(`[bench/exec] ${msg}`);

async function main() {
  const { values } = parseArgs({
    options: {
      execs: { type: 'string', default: '20000' },
      repeat: { type: 'string', default: '3' },
      parallel: { type: 'string', default: '2' },
      'warmup-execs': { type: 'string', default: '20000' },
      modes: { type: 'string', default: 'abcd' },
      keep: { type: 'boolean', default: false },
      'quiet-wait': { type: 'string', default: '60' },
      retries: { type: 'string', default: '2' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const execs = positiveInt('--execs', values.execs);
  const repeat = positiveInt('--repeat', values.repeat);
  const parallel = positiveInt('--parallel', values.parallel);
  const warmupExecs = Number(values['warmup-execs']);
  if (!Number.isInteger(warmupExecs) || warmupExecs < 0) {
    throw new UsageError(`--warmup-execs must be an integer >= 0, got '${values['warmup-execs']}'`);
  }
  const modes = [...new Set(values.modes.split(''))];
  for (const m of modes) {
    if (!(m in MODES)) throw new UsageError(`--modes: unknown mode '${m}'; give letters from abcde`);
  }
  if (!modes.includes('a')) throw new UsageError('--modes must include a: every ratio is against it');
  if (process.getuid?.() !== 0)
    throw new UsageError('run as root: modes b-d load BPF programs or audit rules');

  const work = mkdtempSync(path.join(os.tmpdir(), 'osprey-bench-exec-'));
  cleanup.add('scratch directory', () => {
    if (values.keep) log(`kept scratch directory ${work}`);
    else rmSync(work, { recursive: true, force: true });
  });
  const bins = buildBinaries(work);
  log(
    `storm: ${execs} execs of ${bins.tiny} after ${warmupExecs} of a copy, ${parallel} in flight, ${repeat} round(s), modes ${modes.join('')}`,
  );

  const quietWaitS = Number(values['quiet-wait']);
  if (!(quietWaitS >= 0))
    throw new UsageError(`--quiet-wait must be seconds >= 0, got '${values['quiet-wait']}'`);
  const retries = Number(values.retries);
  if (!Number.isInteger(retries) || retries < 0) {
    throw new UsageError(`--retries must be an integer >= 0, got '${values.retries}'`);
  }
  const ctx = {
    work,
    bins,
    execs,
    warmupExecs,
    parallel,
    quietWaitS,
    retries,
    keep: values.keep,
    skipped: {},
  };
  const available = {};
  for (const m of modes) {
    const why = await unavailableReason(m);
    if (why) {
      ctx.skipped[m] = why;
      log(`skipping (${m}) ${MODES[m]}: ${why}`);
    } else available[m] = true;
  }

  const runs = [];
  const discarded = [];
  for (let round = 1; round <= repeat; round++) {
    for (const m of modes) {
      if (!available[m]) continue;
      for (let attempt = 0; ; attempt++) {
        log(`round ${round}/${repeat}: (${m}) ${MODES[m]}${attempt ? ` — attempt ${attempt + 1}` : ''}`);
        const r = await runMode(m, round, ctx);
        log(`  wall ${r.wall_s.toFixed(3)} s${r.note ? ` — ${r.note}` : ''}`);
        await sleep(1000); // let the machine settle between storms
        // One broken run must not hide the others' numbers: it is reported in
        // the errors list and the mode runs again in the next round.
        if (r.error) log(`  (${m}) failed: ${r.error}`);
        if (r.contended && attempt < ctx.retries) {
          log(
            `  others used ${(r.others_cpu_fraction * 100).toFixed(0)} % of the machine during the storm; running it again`,
          );
          discarded.push(r);
          continue;
        }
        r.attempts = attempt + 1;
        runs.push(r);
        break;
      }
    }
  }

  const report = summarize(ctx, runs, {
    execs,
    warmup_execs: warmupExecs,
    repeat,
    parallel,
    modes,
    retries: ctx.retries,
  });
  report.discarded_contended_runs = discarded.map(({ rss_samples, status, ...r }) => r);
  saveResults(RESULTS, 'exec', report, renderMarkdown(report), log);
  return runs.some((r) => r.error) ? 1 : 0;
}

// ---------------------------------------------------------------------------
// set-up

class UsageError extends Error {}

function positiveInt(flag, s) {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer, got '${s}'`);
  return n;
}

/** Compiles the storm driver and the do-nothing binary into the scratch dir. */
function buildBinaries(work) {
  const cc = process.env.CC || which('cc') || which('gcc') || which('clang');
  if (!cc) throw new Error('no C compiler found: install gcc (apt-get install gcc) or set CC');
  const src = path.join(REPO, 'bench/exec');
  const storm = path.join(work, 'storm');
  const tiny = path.join(work, TINY_NAME);
  const canary = path.join(work, CANARY_NAME);
  execFileSync(cc, ['-O2', '-Wall', '-Wextra', '-o', storm, path.join(src, 'storm.c')], { stdio: 'inherit' });
  try {
    // no libc at all: exec cost is the kernel's exec path and nothing else
    execFileSync(cc, ['-O2', '-static', '-nostdlib', '-DOSPREY_TINY_NOLIBC', '-o', tiny, `${src}/tiny.c`], {
      stdio: 'pipe',
    });
    execFileSync(tiny);
  } catch {
    log('no-libc build of tiny.c failed on this architecture; using a static libc build');
    try {
      execFileSync(cc, ['-O2', '-static', '-o', tiny, `${src}/tiny.c`], { stdio: 'pipe' });
    } catch {
      execFileSync(cc, ['-O2', '-o', tiny, `${src}/tiny.c`], { stdio: 'inherit' });
    }
  }
  // Separate copies for the readiness and drain probes, so they never count as
  // storm execs and an early probe is never mistaken for a late one.
  // and for the warm-up storm, which must not count either
  const done = path.join(work, DONE_NAME);
  const warmup = path.join(work, WARMUP_NAME);
  for (const copy of [canary, done, warmup]) {
    copyFileSync(tiny, copy);
    chmodSync(copy, 0o755);
  }
  return { storm, tiny, canary, done, warmup };
}

async function unavailableReason(mode) {
  switch (mode) {
    case 'a':
      return null;
    case 'b':
    case 'e': {
      const bin = path.join(REPO, 'bin/osprey');
      if (!existsSync(bin)) return 'bin/osprey not found — build Osprey first (see README)';
      if (!existsSync(path.join(REPO, 'dist/src/cli/main.js')))
        return 'dist/src/cli/main.js missing — run npm run build';
      const help = await run(bin, ['agent', '--help']);
      if (help.code !== 0)
        return `bin/osprey agent --help failed: ${(help.stderr || help.stdout).trim().slice(0, 300)}`;
      if (mode === 'e' && !help.stdout.includes('--store-path')) return 'this Osprey has no event store';
      return null;
    }
    case 'c': {
      if (!which('auditctl')) return 'auditctl not installed (apt-get install auditd)';
      const st = await auditStatus();
      if (!st) return 'auditctl -s failed: is the kernel built with CONFIG_AUDIT?';
      if (st.enabled === 2) return 'audit configuration is locked (enabled 2): rules cannot be changed';
      if (!(st.pid && isAlive(st.pid)) && !which('auditd'))
        return 'auditd not installed (apt-get install auditd)';
      return null;
    }
    case 'd': {
      if (!which('bpftrace')) return 'bpftrace not installed (apt-get install bpftrace)';
      if (!existsSync('/sys/kernel/tracing/events') && !existsSync('/sys/kernel/debug/tracing/events')) {
        // bpftrace finds tracepoints through tracefs. Mount it the way Osprey's
        // agent does at start (and, like the agent, leave it mounted).
        const m = await run('mount', ['-t', 'tracefs', 'tracefs', '/sys/kernel/tracing']);
        if (m.code !== 0) return `tracefs is not mounted and mounting it failed: ${m.stderr.trim()}`;
        log('mounted tracefs on /sys/kernel/tracing for bpftrace (left mounted, as the agent does)');
      }
      return null;
    }
  }
  return 'unknown mode';
}

// ---------------------------------------------------------------------------
// one storm

/** Runs the storm driver; returns its JSON report or throws. */
async function storm(ctx, bin = ctx.bins.tiny, execs = ctx.execs) {
  const r = await run(ctx.bins.storm, [String(execs), String(ctx.parallel), bin], {}, cleanup);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  let out;
  try {
    out = JSON.parse(line);
  } catch {
    throw new Error(`storm driver exited ${r.code ?? r.signal}: ${r.stderr.trim() || line}`);
  }
  if (out.failed) throw new Error(`${out.failed} of ${out.execs} storm execs failed`);
  return out;
}

/**
 * Measures the storm with the observer's process (if any) watched: its CPU
 * time over the storm and the whole machine's busy CPU time.
 */
async function measuredStorm(ctx, observerPids = [], beforeStorm = async () => {}) {
  // A warm-up storm of another copy of the binary, not measured and not
  // counted: an observer that runs for days has long since compiled (JIT)
  // and sized what an exec costs it; the storm measures that, not its first
  // seconds. Every mode gets the same warm-up.
  let warmup = null;
  if (ctx.warmupExecs > 0) {
    const w = await storm(ctx, ctx.bins.warmup, ctx.warmupExecs);
    warmup = { execs: ctx.warmupExecs, wall_s: w.wall_s };
  }
  // What else the shared machine is doing right before the storm (an
  // observer's work left from the warm-up included): the busy CPU
  // of an idle second (our observer's idle cost included). On a busy machine,
  // wait a while for a quiet second rather than measure someone else's build.
  const t0 = Date.now();
  let background_busy_cores;
  for (;;) {
    const bg0 = systemCpu();
    await sleep(1000);
    const bg1 = systemCpu();
    background_busy_cores = round3((bg1.busy - bg0.busy) / ((bg1.total - bg0.total) / os.cpus().length));
    if (background_busy_cores <= QUIET_CORES || Date.now() - t0 >= ctx.quietWaitS * 1000) break;
  }
  const waited_for_quiet_s = round3((Date.now() - t0) / 1000 - 1);
  await beforeStorm();
  const foreign = otherObservers(observerPids);
  const cpu0 = observerPids.map((p) => cpuSeconds(p) ?? 0);
  const sys0 = systemCpu();
  const iwi0 = irqWorkInterrupts();
  const s = await storm(ctx);
  const iwi1 = irqWorkInterrupts();
  const sys1 = systemCpu();
  const cpu1 = observerPids.map((p) => cpuSeconds(p) ?? 0);
  const observerCpu = cpu1.reduce((a, b) => a + b, 0) - cpu0.reduce((a, b) => a + b, 0);
  const busy = sys1.busy - sys0.busy;
  // Whatever the machine did during the storm beyond the storm and the
  // observer: other people's work (plus the kernel's deferred work for ours,
  // e.g. writeback, which is small). A storm that shared the cores with much
  // of it measured the neighbours, not the observer.
  const othersCpu = Math.max(0, busy - s.self_cpu_s - s.children_cpu_s - observerCpu);
  const others_cpu_fraction = round3(othersCpu / (s.wall_s * os.cpus().length));
  return {
    wall_s: s.wall_s,
    storm: s,
    warmup,
    background_busy_cores,
    waited_for_quiet_s,
    other_agents: foreign,
    system_busy_cpu_s: round3(busy),
    irq_work_interrupts: iwi0 === null || iwi1 === null ? null : iwi1 - iwi0,
    others_cpu_fraction,
    contended: others_cpu_fraction > CONTENDED_FRACTION,
    observer_cpu_s: observerPids.length ? round3(observerCpu) : null,
  };
}

/** A fresh directory for one attempt of one storm (a retried storm gets its own). */
function runDir(ctx, name, mode = 0o755) {
  ctx.seq = (ctx.seq ?? 0) + 1;
  const dir = path.join(ctx.work, `${name}-${ctx.seq}`);
  mkdirSync(dir, { mode });
  return dir;
}

async function runMode(mode, round, ctx) {
  const base = { mode, round, wall_s: Number.NaN };
  try {
    switch (mode) {
      case 'a':
        return { ...base, ...(await measuredStorm(ctx)) };
      case 'b':
        return { ...base, ...(await runOsprey(round, ctx, { store: false })) };
      case 'e':
        return { ...base, ...(await runOsprey(round, ctx, { store: true })) };
      case 'c':
        return { ...base, ...(await runAuditd(round, ctx)) };
      case 'd':
        return { ...base, ...(await runBpftrace(round, ctx)) };
    }
  } catch (err) {
    return { ...base, error: err instanceof Error ? err.message : String(err) };
  }
  return { ...base, error: 'unknown mode' };
}

// ---------------------------------------------------------------------------
// (b) Osprey

/** Spawns a long-running observer with its output in files; registers its stop. */
function spawnObserver(name, cmd, args, logPrefix) {
  const out = openSync(`${logPrefix}.stdout`, 'w');
  const err = openSync(`${logPrefix}.stderr`, 'w');
  let child;
  try {
    child = spawn(cmd, args, { stdio: ['ignore', out, err] });
  } finally {
    closeSync(out);
    closeSync(err);
  }
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
    child.on('error', (e) => resolve({ code: null, signal: null, error: e }));
  });
  const pid = child.pid;
  const stopNow = cleanup.add(`stop ${name} (pid ${pid})`, () => {
    if (pid && isAlive(pid)) {
      const how = killAndWaitSync(pid, 'SIGTERM', 15000);
      if (how === 'kill') log(`${name} (pid ${pid}) ignored SIGTERM for 15 s; killed it`);
    }
  }).run;
  return { child, pid, exited, stopNow, logPrefix };
}

function tail(file, n = 1500) {
  try {
    const s = readFileSync(file, 'utf8');
    return s.slice(-n).trim();
  } catch {
    return '';
  }
}

/**
 * Follows a growing file (and, if it was rotated, its .1 backup) looking for
 * a marker, without rereading what was already scanned.
 */
class FileWatch {
  #offset = 0;
  #carry = Buffer.alloc(0);
  constructor(file) {
    this.file = file;
  }

  /**
   * Feeds the bytes added since the last call, in chunks (an export file
   * can outgrow the longest string V8 allows), each prefixed with the tail
   * of the one before so a needle split across reads is still found.
   */
  #readNew(keep, onChunk) {
    let size;
    try {
      size = statSync(this.file).size;
    } catch {
      return;
    }
    if (size < this.#offset) {
      // truncated or rotated under us: start over
      this.#offset = 0;
      this.#carry = Buffer.alloc(0);
    }
    if (size === this.#offset) return;
    const fd = openSync(this.file, 'r');
    try {
      const chunk = Buffer.alloc(Math.min(size - this.#offset, 8 << 20));
      while (this.#offset < size) {
        const n = readSync(fd, chunk, 0, Math.min(chunk.length, size - this.#offset), this.#offset);
        if (n <= 0) break;
        this.#offset += n;
        const data = Buffer.concat([this.#carry, chunk.subarray(0, n)]);
        if (onChunk(data) === false) return;
        this.#carry = Buffer.from(data.subarray(Math.max(0, data.length - keep)));
      }
    } finally {
      closeSync(fd);
    }
  }

  /** Occurrences of `needle` in the bytes added since the last call. */
  count(needle) {
    const pat = Buffer.from(needle);
    let hits = 0;
    // carry less than one needle, so nothing is counted twice
    this.#readNew(pat.length - 1, (data) => {
      for (let i = data.indexOf(pat); i >= 0; i = data.indexOf(pat, i + 1)) hits++;
    });
    return hits;
  }

  /** True once `needle` has appeared in the bytes added since the last call. */
  scanFor(needle) {
    const pat = Buffer.from(needle);
    let found = false;
    this.#readNew(pat.length, (data) => {
      found = data.includes(pat);
      return !found;
    });
    return found;
  }
}

/**
 * Execs a probe program until `needle` shows up in the watched file; returns
 * the seconds it took. The first exec is immediate so the drain measurement
 * after a storm is not padded; later ones only repeat a probe that got lost.
 */
async function waitForMarker(watch, probe, needle, timeoutMs, isUp, reexecEveryMs) {
  const t0 = Date.now();
  let lastExec = 0;
  for (;;) {
    if (Date.now() - lastExec >= reexecEveryMs) {
      execFileSync(probe.exe, probe.args);
      lastExec = Date.now();
    }
    await sleep(20);
    if (watch.scanFor(needle)) return (Date.now() - t0) / 1000;
    if (!isUp()) throw new Error(`the observer exited while waiting for ${needle}`);
    if (Date.now() - t0 > timeoutMs) throw new Error(`${needle} did not arrive within ${timeoutMs / 1000} s`);
  }
}

/** The node process that runs the agent (bin/osprey may be a wrapper). */
function agentPid(pid) {
  const comm = (p) => {
    try {
      return readFileSync(`/proc/${p}/comm`, 'utf8').trim();
    } catch {
      return '';
    }
  };
  let cur = pid;
  for (let depth = 0; depth < 3 && comm(cur) !== 'node'; depth++) {
    const kids = childPids(cur);
    if (kids.length !== 1) break;
    cur = kids[0];
  }
  return cur;
}

async function ospreyStatus(socket) {
  const r = await run(path.join(REPO, 'bin/osprey'), ['status', '-o', 'json', '--socket', socket]);
  if (r.code !== 0) return { error: (r.stderr || r.stdout).trim().slice(0, 500) };
  try {
    return JSON.parse(r.stdout);
  } catch {
    return { error: `status output is not JSON: ${r.stdout.slice(0, 200)}` };
  }
}

/** `osprey agent --help`, read once: which flags this build of the agent has. */
let agentHelp;
async function agentFlags() {
  agentHelp ??= (await run(path.join(REPO, 'bin/osprey'), ['agent', '--help'])).stdout;
  return agentHelp;
}

/**
 * The agent's command line. Everything that would touch the host beyond the
 * BPF programs — state directory, event store, TCP listeners, a config file in
 * /etc — is pointed into the scratch directory or turned off, so the run
 * neither writes into the host's Osprey state nor collides with another agent.
 */
async function ospreyArgs(dir, { store }) {
  const help = await agentFlags();
  const has = (flag) => help.includes(flag);
  const args = [
    'agent',
    '--export-file',
    path.join(dir, 'events.json'),
    // no rotation during the storm: every event stays in one file to count
    '--export-file-max-size-mb',
    '100000',
    '--no-export-stdout',
    '--no-seed',
    '--api-socket',
    path.join(dir, 'api.sock'),
    '--node-name',
    'bench',
  ];
  const bundled = path.join(REPO, 'config/osprey.yaml');
  if (existsSync(bundled)) args.push('--config', bundled);
  if (has('--state-dir')) args.push('--state-dir', path.join(dir, 'state'));
  if (has('--store-path')) args.push('--store-path', store ? path.join(dir, 'state/events.db') : '');
  if (has('--metrics-address')) args.push('--metrics-address', '');
  if (has('--ui-address')) args.push('--ui-address', '');
  // the BPF µs per exec reported come from the kernel's run-time statistics
  // (two clock reads per program run, ~0.1 µs an exec)
  if (has('bpf-stats')) args.push('--bpf-stats');
  return args;
}

async function runOsprey(round, ctx, opts) {
  const dir = runDir(ctx, `osprey-${round}`);
  const exportFile = path.join(dir, 'events.json');
  const socket = path.join(dir, 'api.sock');
  const args = await ospreyArgs(dir, opts);
  const agent = spawnObserver('osprey agent', path.join(REPO, 'bin/osprey'), args, path.join(dir, 'agent'));
  let exit = null;
  agent.exited.then((e) => {
    exit = e;
  });
  const up = () => exit === null;
  const failWith = (msg) => {
    const why = tail(`${agent.logPrefix}.stderr`) || tail(`${agent.logPrefix}.stdout`);
    return new Error(`${msg}${why ? `; agent said: ${why}` : ''}`);
  };

  try {
    const watch = new FileWatch(exportFile);
    const t0 = Date.now();
    try {
      const marker = `osprey-bench-ready-${round}`;
      await waitForMarker(watch, { exe: ctx.bins.canary, args: [marker] }, marker, 60000, up, 500);
    } catch (e) {
      throw failWith(`agent did not start: ${e.message}`);
    }
    const startup_s = (Date.now() - t0) / 1000;
    const pid = agentPid(agent.pid);
    const sampler = new MemorySampler(pid, 250);
    const stormStartMs = sampler.mark();
    // the agent's exec latency histogram counts from its start: read it just
    // before the measured storm too, so that the storm's own percentiles come
    // from the difference (the warm-up's first, cold execs are not the storm's)
    let latencyBefore = null;
    const m = await measuredStorm(ctx, [pid], async () => {
      latencyBefore = pickLatency(await ospreyStatus(socket));
    });
    const stormEndMs = sampler.mark();
    const cpuBeforeDrain = cpuSeconds(pid) ?? 0;
    let drain_s;
    try {
      const marker = `osprey-bench-done-${round}`;
      drain_s = await waitForMarker(watch, { exe: ctx.bins.done, args: [marker] }, marker, 120000, up, 5000);
    } catch (e) {
      throw failWith(`agent did not catch up after the storm: ${e.message}`);
    }
    const drainCpu = (cpuSeconds(pid) ?? 0) - cpuBeforeDrain;
    await sleep(500);
    const status = await ospreyStatus(socket);
    const samples = sampler.stop();
    const final = samples.at(-1);

    // stop the agent, then count what it wrote
    try {
      process.kill(agent.pid, 'SIGTERM');
    } catch {
      // already gone; the exit record says how
    }
    const stopped = await Promise.race([agent.exited, sleep(20000).then(() => null)]);
    agent.stopNow(); // escalates to SIGKILL if it is still there
    const counts = await countExports(exportFile, ctx.bins.tiny);
    // ~100 MB per round at 20k execs: do not let the rounds pile up in /tmp
    if (!ctx.keep) rmSync(dir, { recursive: true, force: true });
    const lost = ctx.execs - counts.exec;

    return {
      ...m,
      // the agent keeps working after the storm's last exec until its backlog is
      // written; that time is the agent's, so count it in its CPU figure
      observer_cpu_s: round3(m.observer_cpu_s + drainCpu),
      events_expected: ctx.execs,
      events_seen: counts.exec,
      events_lost: lost,
      exit_events_seen: counts.exit,
      export_bytes: counts.bytes,
      export_lines: counts.lines,
      export_bad_lines: counts.bad,
      startup_s: round3(startup_s),
      drain_s: round3(drain_s),
      latency: latencyBetween(latencyBefore, pickLatency(status)),
      bpf_ns_per_run: bpfCost(status),
      agent_drops: status?.drops ?? null,
      export_file_dropped: status?.export_file?.dropped ?? null,
      status,
      agent_exit: stopped ?? { note: 'did not exit within 20 s of SIGTERM; killed' },
      rss: rssSummary(samples, stormStartMs, stormEndMs),
      rss_samples: samples,
      final_rss_kb: final?.rss_kb ?? null,
      note: `lost ${lost}, drain ${drain_s.toFixed(2)} s`,
    };
  } finally {
    agent.stopNow();
  }
}

/**
 * Mean kernel time of each of the agent's programs per run, from the run-time
 * statistics the agent turns on (--bpf-stats); their sum is what one fork+exec+exit cycle
 * pays inside BPF.
 */
function bpfCost(status) {
  const progs = Array.isArray(status?.programs) ? status.programs : [];
  const per = {};
  let total = 0;
  for (const p of progs) {
    if (!(p.run_count > 0) || typeof p.run_time_ns !== 'number') continue;
    per[p.name] = Math.round(p.run_time_ns / p.run_count);
    total += per[p.name];
  }
  return progs.length ? { ...per, sum: total } : null;
}

/**
 * The percentiles of the samples recorded between two readings of the
 * agent's latency histogram, from its buckets ([upper edge ms, count]): each
 * percentile is its bucket's upper edge, as the agent reports them. Without
 * buckets (an older agent), the later reading as it is.
 */
function latencyBetween(before, after) {
  if (!after?.buckets) return after;
  const earlier = new Map((before?.buckets ?? []).map(([edge, n]) => [String(edge), n]));
  const diff = [];
  for (const [edge, n] of after.buckets) {
    const d = n - (earlier.get(String(edge)) ?? 0);
    if (d > 0) diff.push([edge, d]);
  }
  const count = diff.reduce((a, [, n]) => a + n, 0);
  const { buckets: _b, ...sinceStart } = after;
  if (count === 0) return { count: 0, p50_ms: 0, p99_ms: 0, max_ms: 0, since_agent_start: sinceStart };
  const edgeMs = (edge) => (edge === null ? after.max_ms : round3(edge));
  const quantile = (q) => {
    const rank = Math.max(1, Math.ceil(q * count));
    let seen = 0;
    for (const [edge, n] of diff) {
      seen += n;
      if (seen >= rank) return Math.min(edgeMs(edge), after.max_ms);
    }
    return after.max_ms;
  };
  return {
    count,
    p50_ms: quantile(0.5),
    p99_ms: quantile(0.99),
    max_ms: Math.min(edgeMs(diff.at(-1)[0]), after.max_ms),
    since_agent_start: sinceStart,
  };
}

/** Finds the latency summary in `osprey status -o json`, wherever it sits. */
function pickLatency(status) {
  if (!status || typeof status !== 'object') return null;
  const seen = new Set();
  const visit = (o, at) => {
    if (!o || typeof o !== 'object' || seen.has(o)) return null;
    seen.add(o);
    if ('p99_ms' in o && 'p50_ms' in o) return { at, ...o };
    for (const [k, v] of Object.entries(o)) {
      const hit = visit(v, at ? `${at}.${k}` : k);
      if (hit) return hit;
    }
    return null;
  };
  return visit(status, '');
}

/** Counts process_exec/exit events of the storm binary across the file and backups. */
async function countExports(file, tinyPath) {
  const out = { exec: 0, exit: 0, lines: 0, bytes: 0, bad: 0 };
  const files = [file];
  for (let i = 1; existsSync(`${file}.${i}`); i++) files.push(`${file}.${i}`);
  for (const f of files) {
    if (!existsSync(f)) continue;
    out.bytes += statSync(f).size;
    const rl = createInterface({ input: createReadStream(f), crlfDelay: Number.POSITIVE_INFINITY });
    for await (const line of rl) {
      if (!line) continue;
      out.lines++;
      // cheap filter first: most lines on a busy host are other processes
      if (!line.includes(TINY_NAME)) continue;
      let ev;
      try {
        ev = JSON.parse(line);
      } catch {
        out.bad++;
        continue;
      }
      if (ev.process_exec?.process?.binary === tinyPath) out.exec++;
      else if (ev.process_exit?.process?.binary === tinyPath) out.exit++;
    }
  }
  return out;
}

function rssSummary(samples, stormStartMs, stormEndMs) {
  if (samples.length === 0) return null;
  const mb = (kb) => Math.round(kb / 102.4) / 10;
  const during = samples.filter((s) => s.t_ms >= stormStartMs && s.t_ms <= stormEndMs);
  const before = samples.filter((s) => s.t_ms < stormStartMs).at(-1) ?? samples[0];
  const at = (frac) => {
    if (during.length === 0) return null;
    return mb(during[Math.min(during.length - 1, Math.floor(frac * (during.length - 1)))].rss_kb);
  };
  const maxDuring = during.length ? Math.max(...during.map((s) => s.rss_kb)) : before.rss_kb;
  // flat: the second half of the storm adds no more than 10% over its midpoint
  const mid = at(0.5);
  const end = at(1);
  return {
    samples: samples.length,
    before_storm_mb: mb(before.rss_kb),
    storm_0_25_50_75_100_mb: [at(0), at(0.25), at(0.5), at(0.75), at(1)],
    max_during_storm_mb: mb(maxDuring),
    after_drain_mb: mb(samples.at(-1).rss_kb),
    peak_hwm_mb: mb(Math.max(...samples.map((s) => s.hwm_kb))),
    second_half_growth_mb: mid !== null && end !== null ? round3(end - mid) : null,
    flat: mid !== null && end !== null ? end <= mid * 1.1 : null,
  };
}

// ---------------------------------------------------------------------------
// (c) auditd

async function auditStatus() {
  const r = await run(which('auditctl') ?? 'auditctl', ['-s']);
  if (r.code !== 0) return null;
  const st = {};
  for (const line of r.stdout.split('\n')) {
    const m = /^(\w+)\s+(\S+)/.exec(line);
    if (m && /^\d+$/.test(m[2])) st[m[1]] = Number(m[2]);
  }
  return st;
}

function auditctl(args) {
  execFileSync(which('auditctl') ?? 'auditctl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * A private auditd for the run: the system's auditd.conf with the log moved
 * into the scratch dir, no rotation and no plugins, so the benchmark neither
 * fills nor rotates away the host's audit trail.
 */
function privateAuditdConfig(dir) {
  const conf = existsSync('/etc/audit/auditd.conf') ? readFileSync('/etc/audit/auditd.conf', 'utf8') : '';
  const override = {
    log_file: path.join(dir, 'audit.log'),
    max_log_file_action: 'IGNORE',
    plugin_dir: path.join(dir, 'plugins.d'),
    space_left_action: 'IGNORE',
    admin_space_left_action: 'IGNORE',
    disk_full_action: 'IGNORE',
    disk_error_action: 'IGNORE',
  };
  const lines = conf
    .split('\n')
    .filter((l) => {
      const k = /^\s*(\w+)\s*=/.exec(l)?.[1];
      return !(k && k in override);
    })
    .concat(Object.entries(override).map(([k, v]) => `${k} = ${v}`));
  mkdirSync(path.join(dir, 'plugins.d'), { recursive: true });
  writeFileSync(path.join(dir, 'auditd.conf'), `${lines.join('\n')}\n`, { mode: 0o640 });
}

async function runAuditd(round, ctx) {
  const dir = runDir(ctx, `auditd-${round}`, 0o750);
  const before = await auditStatus();
  if (!before) throw new Error('auditctl -s failed');

  // Put back exactly what we change, in reverse order, whatever happens.
  const restore = cleanup.add('restore audit settings', () => {
    auditctl(['-e', String(before.enabled)]);
    auditctl(['-b', String(before.backlog_limit)]);
    if (before.backlog_wait_time !== undefined)
      auditctl(['--backlog_wait_time', String(before.backlog_wait_time)]);
  }).run;
  let daemon = null;
  const existing = before.pid && isAlive(before.pid) ? before.pid : 0;
  let removeRule = () => {};
  try {
    if (!existing) {
      privateAuditdConfig(dir);
      daemon = spawnObserver('auditd', which('auditd'), ['-n', '-c', dir], path.join(dir, 'auditd'));
      const deadline = Date.now() + 15000;
      for (;;) {
        const st = await auditStatus();
        if (st?.pid === daemon.pid) break;
        if (!isAlive(daemon.pid) || Date.now() > deadline) {
          throw new Error(`auditd did not register with the kernel: ${tail(`${daemon.logPrefix}.stderr`)}`);
        }
        await sleep(100);
      }
    }
    // The backlog Debian's shipped rules set (/etc/audit/rules.d/audit.rules):
    // with the kernel default of 64, a storm would mostly measure audit's
    // back-pressure waits rather than a configured auditd.
    auditctl(['-b', '8192']);
    auditctl(['--backlog_wait_time', '60000']);
    auditctl(['-e', '1']);
    auditctl(['-a', ...AUDIT_RULE]);
    removeRule = cleanup.add('remove audit rule', () => auditctl(['-d', ...AUDIT_RULE])).run;
    const lost0 = (await auditStatus())?.lost ?? 0;

    const pids = [daemon?.pid ?? existing, ...pidsByComm('kauditd')].filter(Boolean);
    const m = await measuredStorm(ctx, pids);
    removeRule();
    const lost = ((await auditStatus())?.lost ?? 0) - lost0;

    let seen = null;
    let drain_s = null;
    if (daemon) {
      // auditd writes asynchronously: wait until the log stops growing
      const logFile = path.join(dir, 'audit.log');
      const t0 = Date.now();
      let last = -1;
      for (;;) {
        await sleep(500);
        const size = existsSync(logFile) ? statSync(logFile).size : 0;
        if (size === last || Date.now() - t0 > 60000) break;
        last = size;
      }
      drain_s = round3((Date.now() - t0) / 1000 - 0.5);
      seen = await countAuditRecords(logFile, ctx.bins.tiny);
    }
    return {
      ...m,
      events_expected: ctx.execs,
      events_seen: seen,
      events_lost: seen === null ? null : ctx.execs - seen,
      kernel_audit_lost: lost,
      drain_s,
      auditd: daemon
        ? 'private auditd started for the run (log in scratch dir)'
        : `host auditd pid ${existing}`,
      note: seen === null ? `kernel lost ${lost}` : `records ${seen}, kernel lost ${lost}`,
    };
  } finally {
    removeRule();
    if (daemon) daemon.stopNow();
    restore();
  }
}

async function countAuditRecords(logFile, tinyPath) {
  if (!existsSync(logFile)) return 0;
  let n = 0;
  const rl = createInterface({ input: createReadStream(logFile), crlfDelay: Number.POSITIVE_INFINITY });
  const exe = `exe="${tinyPath}"`;
  for await (const line of rl) {
    if (line.startsWith('type=SYSCALL') && line.includes(`key="${AUDIT_KEY}"`) && line.includes(exe)) n++;
  }
  return n;
}

// ---------------------------------------------------------------------------
// (d) bpftrace

async function runBpftrace(round, ctx) {
  const dir = runDir(ctx, `bpftrace-${round}`);
  const outFile = path.join(dir, 'out.txt');
  const script = 'tracepoint:syscalls:sys_enter_execve { printf("%s\\n", str(args->filename)); }';
  const bt = spawnObserver(
    'bpftrace',
    which('bpftrace'),
    ['-o', outFile, '-e', script],
    path.join(dir, 'bpftrace'),
  );
  try {
    const btUp = () => isAlive(bt.pid);
    await waitAttached(bt.pid, outFile, btUp);
    const m = await measuredStorm(ctx, [bt.pid]);
    // bpftrace block-buffers its -o file (4 KB), so a probe exec after the
    // storm cannot mark "caught up". Instead: wait until the storm's lines stop
    // arriving, then SIGINT, on which bpftrace drains its buffers, flushes and
    // reports what the kernel dropped.
    const cpuBeforeDrain = cpuSeconds(bt.pid) ?? 0;
    const watch = new FileWatch(outFile);
    let seenSoFar = 0;
    let lastGrowth = Date.now();
    const t0 = Date.now();
    while (seenSoFar < ctx.execs && Date.now() - lastGrowth < 1000 && Date.now() - t0 < 60000 && btUp()) {
      await sleep(100);
      const n = watch.count(`\n${ctx.bins.tiny}\n`);
      if (n > 0) lastGrowth = Date.now();
      seenSoFar += n;
    }
    try {
      process.kill(bt.pid, 'SIGINT');
    } catch {
      // already gone
    }
    await Promise.race([bt.exited, sleep(15000)]);
    const drainCpu = (cpuSeconds(bt.pid) ?? 0) - cpuBeforeDrain;
    bt.stopNow();
    const text = readFileSync(outFile, 'utf8');
    let seen = 0;
    for (const line of text.split('\n')) if (line === ctx.bins.tiny) seen++;
    const lostMsg = /Lost (\d+) events/.exec(text + tail(`${bt.logPrefix}.stderr`, 100000));
    return {
      ...m,
      observer_cpu_s: round3(m.observer_cpu_s + Math.max(0, drainCpu)),
      events_expected: ctx.execs,
      events_seen: seen,
      events_lost: ctx.execs - seen,
      bpftrace_reported_lost: lostMsg ? Number(lostMsg[1]) : 0,
      drain_s: null,
      note: `lines ${seen}`,
    };
  } finally {
    bt.stopNow();
  }
}

/**
 * Waits until bpftrace's program is attached to sys_enter_execve. bpftrace
 * prints "Attaching N probes..." before it attaches, so the kernel's own list
 * of perf-event-attached programs (bpftool perf show) is the evidence; without
 * bpftool, a second's grace after the message has to do.
 */
async function waitAttached(pid, outFile, isUp) {
  const t0 = Date.now();
  const check = (cond, what) => {
    if (!isUp()) throw new Error(`bpftrace exited while ${what}`);
    if (Date.now() - t0 > 60000) throw new Error(`bpftrace: still ${what} after 60 s`);
    return cond;
  };
  const watch = new FileWatch(outFile);
  while (!check(watch.scanFor('Attaching'), 'starting')) await sleep(50);
  const bpftool = which('bpftool');
  if (!bpftool) {
    await sleep(1000);
    return;
  }
  for (;;) {
    const r = await run(bpftool, ['-j', 'perf', 'show']);
    let attached = false;
    try {
      attached = JSON.parse(r.stdout).some((e) => e.pid === pid && e.tracepoint === 'sys_enter_execve');
    } catch {
      // bpftool printed nothing parseable yet; try again
    }
    if (check(attached, 'attaching')) return;
    await sleep(100);
  }
}

// ---------------------------------------------------------------------------
// report

const round3 = (x) => (Number.isFinite(x) ? Math.round(x * 1000) / 1000 : x);

function summarize(ctx, runs, params) {
  const ok = runs.filter((r) => !r.error);
  const by = (m) => ok.filter((r) => r.mode === m);
  const baseline = median(by('a').map((r) => r.wall_s));
  // CPU the storm's own processes burned (the kernel's exec path and any BPF
  // program run inside it included) plus the observer's: unlike wall time, it
  // hardly moves when other work shares the cores.
  const cpuCost = (r) => r.storm.self_cpu_s + r.storm.children_cpu_s + (r.observer_cpu_s ?? 0);
  const baselineCpu = median(by('a').map(cpuCost));
  const modes = {};
  for (const m of params.modes) {
    const rs = by(m);
    if (rs.length === 0) {
      modes[m] = { name: MODES[m], skipped: ctx.skipped[m] ?? 'no successful run' };
      continue;
    }
    const walls = rs.map((r) => r.wall_s);
    const med = median(walls);
    const nums = (k) => rs.map((r) => r[k]).filter((v) => typeof v === 'number');
    const entry = {
      name: MODES[m],
      runs: rs.length,
      wall_s_median: round3(med),
      wall_s_all: walls.map(round3),
      ratio_vs_a: baseline ? round3(med / baseline) : null,
      overhead_pct: baseline ? round3((med / baseline - 1) * 100) : null,
      // paired view: each round against the same round's baseline
      paired_ratios: rs.map((r) => {
        const a = by('a').find((x) => x.round === r.round);
        return a ? round3(r.wall_s / a.wall_s) : null;
      }),
      execs_per_s_median: round3(params.execs / med),
      system_busy_cpu_s_median: round3(median(nums('system_busy_cpu_s'))),
      irq_work_interrupts_median: nums('irq_work_interrupts').length
        ? median(nums('irq_work_interrupts'))
        : null,
      observer_cpu_s_median: nums('observer_cpu_s').length ? round3(median(nums('observer_cpu_s'))) : null,
      storm_cpu_s_median: round3(median(rs.map((r) => r.storm.self_cpu_s + r.storm.children_cpu_s))),
      cpu_cost_s_median: round3(median(rs.map(cpuCost))),
      cpu_cost_s_all: rs.map((r) => round3(cpuCost(r))),
      cpu_ratio_vs_a: baselineCpu ? round3(median(rs.map(cpuCost)) / baselineCpu) : null,
      cpu_us_per_exec_median: round3((median(rs.map(cpuCost)) / params.execs) * 1e6),
      events_lost_all: rs.map((r) => r.events_lost ?? null),
      drain_s_median: nums('drain_s').length ? round3(median(nums('drain_s'))) : null,
      background_busy_cores_all: rs.map((r) => r.background_busy_cores),
      others_cpu_fraction_all: rs.map((r) => r.others_cpu_fraction),
      other_agents: [...new Set(rs.flatMap((r) => r.other_agents ?? []))],
    };
    if (ctx.skipped[m]) entry.note = ctx.skipped[m];
    if (OSPREY_MODES.includes(m)) {
      const lat = rs.map((r) => r.latency).filter(Boolean);
      entry.latency_p50_ms_median = lat.length ? round3(median(lat.map((l) => l.p50_ms))) : null;
      entry.latency_p99_ms_median = lat.length ? round3(median(lat.map((l) => l.p99_ms))) : null;
      entry.latency_max_ms_worst = lat.length ? Math.max(...lat.map((l) => l.max_ms)) : null;
      entry.latency_samples = lat.map((l) => l.count);
      entry.rss_peak_hwm_mb_worst = Math.max(...rs.map((r) => r.rss?.peak_hwm_mb ?? 0));
      entry.rss_runs = rs.map((r) => r.rss);
      entry.export_bytes_per_line = rs.map((r) =>
        r.export_lines ? Math.round(r.export_bytes / r.export_lines) : null,
      );
      entry.startup_s = rs.map((r) => r.startup_s);
      const bpf = rs.map((r) => r.bpf_ns_per_run?.sum).filter((x) => typeof x === 'number');
      entry.bpf_ns_per_cycle_median = bpf.length ? median(bpf) : null;
      entry.bpf_ns_per_run = rs.map((r) => r.bpf_ns_per_run);
    }
    if (m === 'c') entry.kernel_audit_lost_all = rs.map((r) => r.kernel_audit_lost);
    if (m === 'd') entry.bpftrace_reported_lost_all = rs.map((r) => r.bpftrace_reported_lost);
    modes[m] = entry;
  }
  return {
    benchmark: 'exec-storm',
    date: new Date().toISOString(),
    machine: {
      kernel: os.release(),
      cpus: os.cpus().length,
      cpu_model: os.cpus()[0]?.model ?? 'unknown',
      mem_gb: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
    },
    params: { ...params, storm_binary: 'bench/exec/tiny.c (static, no libc)' },
    targets: TARGETS,
    modes,
    errors: runs.filter((r) => r.error).map((r) => ({ mode: r.mode, round: r.round, error: r.error })),
    runs: runs.map(({ rss_samples, status, ...r }) => ({ ...r, rss_samples_count: rss_samples?.length })),
    osprey_rss_samples: runs
      .filter((r) => r.mode === 'b')
      .map((r) => ({ round: r.round, samples: r.rss_samples })),
    osprey_status: runs.filter((r) => r.mode === 'b').map((r) => ({ round: r.round, status: r.status })),
  };
}

function renderMarkdown(rep) {
  const f = (x, d = 3) => (x === null || x === undefined || Number.isNaN(x) ? '—' : Number(x).toFixed(d));
  const lines = [];
  const p = rep.params;
  lines.push(`### Exec storm — ${rep.date.slice(0, 10)}`);
  lines.push('');
  lines.push(
    `${p.execs} execs of a static no-libc binary (after a warm-up storm of ${p.warmup_execs ?? 0} execs of a copy, not measured), ${p.parallel} in flight, median of ${p.repeat} interleaved ` +
      `round(s); ${rep.machine.cpus} CPUs (${rep.machine.cpu_model}), kernel ${rep.machine.kernel}, Node ${rep.machine.node}.`,
  );
  lines.push('');
  lines.push(
    '| mode | wall s (median) | all runs | ratio vs (a) | per-round ratios | execs/s | observer CPU s | machine busy CPU s | events lost |',
  );
  lines.push('|---|---|---|---|---|---|---|---|---|');
  for (const [m, e] of Object.entries(rep.modes)) {
    if (e.skipped) {
      lines.push(`| (${m}) ${e.name} | skipped: ${e.skipped} | | | | | | | |`);
      continue;
    }
    const lost = e.events_lost_all.every((x) => x === null) ? '—' : e.events_lost_all.join(' / ');
    lines.push(
      `| (${m}) ${e.name} | ${f(e.wall_s_median)} | ${e.wall_s_all.map((x) => f(x)).join(' / ')} | ` +
        `${f(e.ratio_vs_a)} | ${e.paired_ratios.map((x) => f(x, 2)).join(' / ')} | ${f(e.execs_per_s_median, 0)} | ${f(e.observer_cpu_s_median, 2)} | ` +
        `${f(e.system_busy_cpu_s_median, 2)} | ${lost} |`,
    );
  }
  lines.push('');
  lines.push(
    'CPU cost — storm processes (kernel exec path and in-task BPF included) + observer process; ' +
      'steadier than wall time when other work shares the cores:',
  );
  lines.push('');
  lines.push(
    '| mode | CPU s (median) | all runs | ratio vs (a) | µs CPU per exec | storm CPU s | observer CPU s |',
  );
  lines.push('|---|---|---|---|---|---|---|');
  for (const [m, e] of Object.entries(rep.modes)) {
    if (e.skipped) continue;
    lines.push(
      `| (${m}) ${e.name} | ${f(e.cpu_cost_s_median, 2)} | ${e.cpu_cost_s_all.map((x) => f(x, 2)).join(' / ')} | ` +
        `${f(e.cpu_ratio_vs_a)} | ${f(e.cpu_us_per_exec_median, 0)} | ${f(e.storm_cpu_s_median, 2)} | ` +
        `${f(e.observer_cpu_s_median, 2)} |`,
    );
  }
  const iwi = Object.entries(rep.modes)
    .filter(([, e]) => !e.skipped && e.irq_work_interrupts_median != null)
    .map(([m, e]) => `(${m}) ${f(e.irq_work_interrupts_median, 0)}`);
  if (iwi.length) {
    lines.push('');
    lines.push(
      `IRQ-work interrupts during a storm (median; a BPF ring waking its reader raises one): ${iwi.join(', ')}.`,
    );
  }
  for (const om of OSPREY_MODES) {
    const b = rep.modes[om];
    if (!b || b.skipped) continue;
    const t = rep.targets;
    const pass = (okv) => (okv === null ? '?' : okv ? 'met' : '**missed**');
    const rssMax = b.rss_peak_hwm_mb_worst;
    const flat = b.rss_runs.every((r) => r?.flat);
    lines.push('');
    lines.push(`(${om}) ${b.name} against the targets:`);
    lines.push('');
    lines.push('| measure | value | target | |');
    lines.push('|---|---|---|---|');
    lines.push(
      `| overhead vs (a), wall time | ${f(b.overhead_pct, 1)} % | ≤ ${t.overheadPct} % | ${pass(b.overhead_pct <= t.overheadPct)} |`,
    );
    const cpuPct = b.cpu_ratio_vs_a === null ? null : (b.cpu_ratio_vs_a - 1) * 100;
    lines.push(
      `| overhead vs (a), CPU cost | ${f(cpuPct, 1)} % | ≤ ${t.overheadPct} % | ${pass(cpuPct === null ? null : cpuPct <= t.overheadPct)} |`,
    );
    lines.push(
      `| events lost | ${b.events_lost_all.join(' / ')} | 0 | ${pass(b.events_lost_all.every((x) => x === 0))} |`,
    );
    lines.push(
      `| exec→event latency p50 / p99 / max (the measured storm's execs) | ${f(b.latency_p50_ms_median)} / ${f(b.latency_p99_ms_median)} / ` +
        `${f(b.latency_max_ms_worst)} ms | p99 < ${t.p99Ms} ms | ${pass(b.latency_p99_ms_median === null ? null : b.latency_p99_ms_median < t.p99Ms)} |`,
    );
    lines.push(
      `| peak RSS (VmHWM, worst run) | ${f(rssMax, 1)} MB | < ${t.rssMb} MB | ${pass(rssMax < t.rssMb)} |`,
    );
    lines.push(
      `| RSS through the storm (0/25/50/75/100 %) | ${b.rss_runs
        .map((r) => (r ? r.storm_0_25_50_75_100_mb.map((x) => f(x, 1)).join('→') : '—'))
        .join('; ')} MB | flat | ${pass(flat)} |`,
    );
    lines.push(`| agent CPU over storm + drain | ${f(b.observer_cpu_s_median, 2)} s | | |`);
    lines.push(`| drain after last exec | ${f(b.drain_s_median, 2)} s | | |`);
    if (b.bpf_ns_per_cycle_median !== null) {
      const per = b.bpf_ns_per_run.find(Boolean) ?? {};
      const parts = Object.entries(per)
        .filter(([k]) => k !== 'sum')
        .map(([k, v]) => `${k} ${(v / 1000).toFixed(1)}`)
        .join(' + ');
      lines.push(
        `| BPF time per fork+exec+exit (median run) | ${f(b.bpf_ns_per_cycle_median / 1000, 1)} µs (${parts}, one run) | | |`,
      );
    }
    // what the overhead target leaves an observer per exec, beside what Osprey takes: the target's
    // arithmetic in one line (the kernel programs' time is in the storm's CPU, the agent's in its own)
    const a = rep.modes.a;
    if (a && !a.skipped && a.cpu_us_per_exec_median > 0) {
      const budget = (a.cpu_us_per_exec_median * t.overheadPct) / 100;
      const agentUs =
        b.observer_cpu_s_median === null ? null : (b.observer_cpu_s_median / rep.params.execs) * 1e6;
      const bpfUs = b.bpf_ns_per_cycle_median === null ? null : b.bpf_ns_per_cycle_median / 1000;
      lines.push(
        `| the overhead target's CPU budget per exec: ${t.overheadPct} % of (a)'s ${f(a.cpu_us_per_exec_median, 0)} µs | ` +
          `${f(budget, 1)} µs; Osprey takes ${f(bpfUs, 1)} µs in its kernel programs + ${f(agentUs, 1)} µs in its agent | | |`,
      );
    }
  }
  const bg = Object.values(rep.modes).flatMap((e) => e.background_busy_cores_all ?? []);
  const others = [...new Set(Object.values(rep.modes).flatMap((e) => e.other_agents ?? []))];
  lines.push('');
  lines.push(
    `Background load in the idle second before each storm: median ${f(median(bg), 2)}, max ` +
      `${f(bg.length ? Math.max(...bg) : null, 2)} busy cores of ${rep.machine.cpus}; ` +
      `${bg.filter((x) => x > QUIET_CORES).length} of ${bg.length} storms started on a machine busier than ${QUIET_CORES} cores.`,
  );
  const all = Object.values(rep.modes).flatMap((e) => e.others_cpu_fraction_all ?? []);
  lines.push('');
  lines.push(
    `Others' share of the machine's CPU during the storms kept: median ${f(median(all) * 100, 0)} %, ` +
      `max ${f(all.length ? Math.max(...all) * 100 : null, 0)} %; ${rep.discarded_contended_runs?.length ?? 0} ` +
      `contended storm(s) (> ${CONTENDED_FRACTION * 100} %) were run again and left out.`,
  );
  if (others.length) {
    lines.push('');
    lines.push('**Other exec observers were running during the benchmark (they load every mode):**');
    for (const o of others) lines.push(`- ${o}`);
  }
  if (rep.errors.length) {
    lines.push('');
    lines.push('Errors:');
    for (const e of rep.errors) lines.push(`- (${e.mode}) round ${e.round}: ${e.error}`);
  }
  lines.push('');
  return lines.join('\n');
}

// ---------------------------------------------------------------------------
// entry: cleanup on every way out

runBenchmark({
  name: 'bench/exec',
  main,
  cleanup,
  log,
  usage: USAGE,
  isUsage: (err) => err instanceof UsageError,
});

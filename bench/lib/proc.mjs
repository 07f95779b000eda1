// Small helpers the benchmarks share: /proc readers, child processes, and a
// cleanup stack that runs on success, failure and Ctrl-C alike. Plain ESM so a
// benchmark runs without a build step, even while src/ is mid-change.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const CLK_TCK = 100; // Linux USER_HZ on every architecture Osprey targets

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
/** Blocks the thread: only for cleanup paths that must finish before exit. */
export function sleepSync(ms) {
  Atomics.wait(sleepCell, 0, 0, ms);
}

/** State letter of /proc/PID/stat, or null when the process is gone. */
export function procState(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return null;
  }
}

/** A zombie counts as dead: it runs nothing and holds nothing but its pid. */
export function isAlive(pid) {
  const s = procState(pid);
  return s !== null && s !== 'Z' && s !== 'X';
}

/** utime+stime of a process in seconds, or null when it is gone. */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields after comm start at field 3 (state); utime is field 14, stime 15
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

/** Busy and total CPU seconds of the whole machine, from /proc/stat. */
export function systemCpu() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest is already in user)
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = v[3] + v[4];
  return { busy: (total - idle) / CLK_TCK, total: total / CLK_TCK };
}

/**
 * IRQ-work interrupts taken so far, all CPUs (the IWI line of
 * /proc/interrupts), or null where the kernel does not count them. A BPF
 * ring that wakes its reader raises one (a self-IPI).
 */
export function irqWorkInterrupts() {
  try {
    const line = readFileSync('/proc/interrupts', 'utf8')
      .split('\n')
      .find((l) => /^\s*IWI:/.test(l));
    if (!line) return null;
    const counts = line
      .replace(/^\s*IWI:/, '')
      .trim()
      .split(/\s+/);
    let n = 0;
    for (const c of counts) {
      if (!/^\d+$/.test(c)) break;
      n += Number(c);
    }
    return n;
  } catch {
    return null;
  }
}

/** VmRSS and VmHWM in kB, or null when the process is gone. */
export function memoryKb(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /^VmRSS:\s+(\d+)/m.exec(status);
    const hwm = /^VmHWM:\s+(\d+)/m.exec(status);
    if (!rss || !hwm) return null;
    return { rssKb: Number(rss[1]), hwmKb: Number(hwm[1]) };
  } catch {
    return null;
  }
}

/** pids of kernel threads or processes whose comm is exactly `comm`. */
export function pidsByComm(comm) {
  const out = [];
  for (const name of readdirSafe('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/comm`, 'utf8').trim() === comm) out.push(Number(name));
    } catch {
      // gone between readdir and read
    }
  }
  return out;
}

/** Every process's pid and command line (arguments joined by spaces), but those in `exclude`. */
export function cmdlines(exclude = []) {
  const out = [];
  for (const name of readdirSafe('/proc')) {
    if (!/^\d+$/.test(name) || exclude.includes(Number(name))) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ').trim();
      if (cmd) out.push({ pid: Number(name), cmd });
    } catch {
      // gone between readdir and read
    }
  }
  return out;
}

/**
 * Processes other than this one and `ours` that watch syscalls, execs or
 * files and would load a measurement: someone else's agent (`osprey agent`
 * runs as `node … bin/cli.cjs agent`), bpftrace, Tetragon, Falco, auditd.
 */
export function otherObservers(ours) {
  return cmdlines([process.pid, ...ours])
    .filter((p) =>
      /osprey(\.js)? agent|bin\/cli\.[cm]?js agent|\bbpftrace\b|\btetragon\b|\bfalco\b|\bauditd\b/.test(
        p.cmd,
      ),
    )
    .map((p) => `${p.pid}: ${p.cmd.slice(0, 120)}`);
}

/** Direct children of a process (all threads' children lists). */
export function childPids(pid) {
  const out = new Set();
  for (const tid of readdirSafe(`/proc/${pid}/task`)) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/)) {
        if (c) out.add(Number(c));
      }
    } catch {
      // thread gone
    }
  }
  return [...out];
}

function readdirSafe(dir) {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * Signals a process and waits (synchronously) until it is gone, escalating to
 * SIGKILL after `graceMs`. Returns how it ended: 'gone' | 'term' | 'kill'.
 */
export function killAndWaitSync(pid, signal = 'SIGTERM', graceMs = 10000) {
  if (!isAlive(pid)) return 'gone';
  try {
    process.kill(pid, signal);
  } catch {
    return 'gone';
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return 'term';
    sleepSync(50);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // exited in between
  }
  const hardDeadline = Date.now() + 5000;
  while (Date.now() < hardDeadline && isAlive(pid)) sleepSync(50);
  return 'kill';
}

/**
 * Runs a command to completion. Never throws on a non-zero exit: the caller
 * decides what a failure means. `spawnError` is set when it could not start.
 * With `cleanup`, an interrupted run kills the command rather than leaving it
 * running on its own.
 */
export function run(cmd, args, opts = {}, cleanup = null) {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let child;
    try {
      child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    } catch (err) {
      resolve({ code: null, signal: null, stdout, stderr, spawnError: err });
      return;
    }
    child.stdout.setEncoding('utf8').on('data', (d) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d) => {
      stderr += d;
    });
    const pid = child.pid;
    // discarded once the child is reaped, so a recycled pid is never signalled
    const release = cleanup?.add(`stop ${cmd} (pid ${pid})`, () => {
      if (pid) killAndWaitSync(pid, 'SIGKILL', 5000);
    }).discard;
    child.on('error', (err) => {
      release?.();
      resolve({ code: null, signal: null, stdout, stderr, spawnError: err });
    });
    child.on('close', (code, signal) => {
      release?.();
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Absolute path of an executable on PATH, or null. */
export function which(name) {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const p = `${dir}/${name}`;
    if (dir && existsSync(p)) return p;
  }
  for (const dir of ['/usr/sbin', '/sbin', '/usr/bin', '/bin']) {
    if (existsSync(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  return null;
}

/**
 * A stack of undo actions. Each is synchronous so it can run from a signal
 * handler or an 'exit' hook; each runs once, in reverse order of acquisition,
 * and a failing one does not stop the rest.
 */
export class Cleanup {
  #steps = [];

  /**
   * Registers an undo action. The handle's run() undoes now (once);
   * discard() forgets the action when what it undoes has ended by itself.
   */
  add(name, fn) {
    const step = { name, fn, done: false };
    this.#steps.push(step);
    return {
      run: () => this.#runStep(step),
      discard: () => {
        step.done = true;
        const i = this.#steps.indexOf(step);
        if (i >= 0) this.#steps.splice(i, 1);
      },
    };
  }

  runAll(log = console.error) {
    for (let i = this.#steps.length - 1; i >= 0; i--) this.#runStep(this.#steps[i], log);
    this.#steps = [];
  }

  #runStep(step, log = console.error) {
    if (step.done) return;
    step.done = true;
    try {
      step.fn();
    } catch (err) {
      log(`cleanup: ${step.name}: ${err instanceof Error ? err.message : err}`);
    }
    const i = this.#steps.indexOf(step);
    if (i >= 0) this.#steps.splice(i, 1);
  }
}

/** Samples a process's memory every `everyMs` until stopped. */
export class MemorySampler {
  #timer;
  #t0 = Date.now();
  samples = [];

  constructor(pid, everyMs = 250) {
    const take = () => {
      const m = memoryKb(pid);
      if (m) this.samples.push({ t_ms: Date.now() - this.#t0, rss_kb: m.rssKb, hwm_kb: m.hwmKb });
    };
    take();
    this.#timer = setInterval(take, everyMs);
  }

  /** Marks the current time so a report can split samples into phases. */
  mark() {
    return Date.now() - this.#t0;
  }

  stop() {
    clearInterval(this.#timer);
    return this.samples;
  }
}

export function median(xs) {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Run a benchmark's main() with its clean-up on every way out: normal end,
 * a thrown error, an uncaught exception or rejection, SIGINT, SIGTERM or
 * SIGHUP. main() resolves to the exit code; a usage error (isUsage) prints
 * the message and the usage and exits 2.
 */
export function runBenchmark({ name, main, cleanup, log, usage, isUsage }) {
  let exiting = false;
  const bail = (code, why) => {
    if (exiting) return;
    exiting = true;
    if (why) log(why);
    cleanup.runAll(log);
    process.exit(code);
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => bail(128 + os.constants.signals[sig], `${sig}: cleaning up`));
  }
  process.on('uncaughtException', (err) => bail(1, `fatal: ${err?.stack ?? err}`));
  process.on('unhandledRejection', (err) => bail(1, `fatal: ${err?.stack ?? err}`));
  process.on('exit', () => cleanup.runAll(log));
  main().then(
    (code) => bail(code),
    (err) => {
      if (isUsage(err)) {
        console.error(`${name}: ${err.message}\n\n${usage}`);
        bail(2);
      } else bail(1, `fatal: ${err?.stack ?? err}`);
    },
  );
}

/**
 * Writes a benchmark's report and its markdown to bench/results/NAME-STAMP.{json,md}
 * and NAME-latest.{json,md}, prints the markdown and logs where they went.
 */
export function saveResults(resultsDir, name, report, md, log) {
  mkdirSync(resultsDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  for (const base of [`${name}-${stamp}`, `${name}-latest`]) {
    writeFileSync(path.join(resultsDir, `${base}.json`), `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(path.join(resultsDir, `${base}.md`), md);
  }
  console.log(md);
  log(`results: bench/results/${name}-${stamp}.{json,md} (also ${name}-latest.*)`);
}

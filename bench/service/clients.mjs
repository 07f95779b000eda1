// The API clients of the service benchmark: `osprey events -o json --socket
// S`, the command a user runs to follow the agent live, each with its stdout
// to a file of its own (`osprey events -o json > FILE`). The benchmark looks
// at the files' last bytes for the markers while it waits for them, and
// counts what each client received once it has stopped: lines, and
// occurrences of a few exact strings (the loop file's path, quoted as it is
// in the JSON) without parsing. Nothing of the benchmark reads the clients'
// output while the load runs: a reader on a pipe (as before 2026-11-26
// 04:35) took ~15 % of a core at 10,000 events/s from the cores the agent
// and the clients share, which the file exporter alone (A) never paid.

import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { cpuSeconds, isAlive, killAndWaitSync } from '../lib/proc.mjs';
import { cleanup, OSPREY, tailHas } from '../policy/common.mjs';

/**
 * Counts occurrences of byte strings in a stream that arrives in chunks,
 * searching each chunk in place. A match may straddle two chunks: each needle
 * keeps the last bytes of the previous chunk that could begin one, and the
 * few bytes around the boundary are searched apart.
 */
export class NeedleCounter {
  constructor(needles) {
    this.needles = Object.entries(needles).map(([key, s]) => ({
      key,
      buf: Buffer.from(s),
      carry: Buffer.alloc(0),
    }));
    this.counts = Object.fromEntries(this.needles.map((n) => [n.key, 0]));
    this.lines = 0;
    this.bytes = 0;
  }

  push(chunk) {
    this.bytes += chunk.length;
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) this.lines++;
    for (const n of this.needles) {
      const len = n.buf.length;
      let c = 0;
      if (n.carry.length) {
        // shorter than the needle on both sides of the boundary: any match in it straddles
        const edge = Buffer.concat([n.carry, chunk.subarray(0, len - 1)]);
        for (let i = edge.indexOf(n.buf); i !== -1; i = edge.indexOf(n.buf, i + 1)) c++;
      }
      for (let i = chunk.indexOf(n.buf); i !== -1; i = chunk.indexOf(n.buf, i + len)) c++;
      this.counts[n.key] += c;
      const tail = chunk.length >= len - 1 ? chunk : Buffer.concat([n.carry, chunk]);
      n.carry = Buffer.from(tail.subarray(Math.max(0, tail.length - (len - 1))));
    }
  }
}

/** Counts lines and needles in a file, read in chunks. */
export function countFile(file, needles) {
  const counter = new NeedleCounter(needles);
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(8 << 20);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      counter.push(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return counter;
}

/**
 * Starts one `osprey events` client on the agent's socket. Its stderr goes
 * to `logFile`, its stdout to `outFile`, counted once it has stopped.
 * Registered with the cleanup stack the moment it exists.
 */
export function startClient(name, socket, logFile, outFile, needles) {
  const err = openSync(logFile, 'w');
  const out = openSync(outFile, 'w');
  let child;
  try {
    child = spawn(OSPREY, ['events', '-o', 'json', '--socket', socket], {
      stdio: ['ignore', out, err],
    });
  } finally {
    closeSync(err);
    closeSync(out);
  }
  const pid = child.pid;
  const stop = cleanup.add(`stop API client ${name} (pid ${pid})`, () => {
    if (pid && isAlive(pid)) killAndWaitSync(pid, 'SIGTERM', 5000);
  });
  // a client the agent cuts off exits on its own, and its CPU time goes with
  // it: the last reading, taken every 100 ms, stands for it then
  let lastCpu = 0;
  const cpuTimer = setInterval(() => {
    lastCpu = cpuSeconds(pid) ?? lastCpu;
  }, 100);
  const client = {
    name,
    pid,
    /** what it received, counted once it has stopped (client.stop) */
    counter: new NeedleCounter(needles),
    exit: null,
    /** Date.now() when each needle was first seen after mark(key) */
    seenAt: {},
    up: () => client.exit === null,
    /** user+system CPU seconds so far (at most 100 ms short once it has exited) */
    cpu: () => {
      lastCpu = cpuSeconds(pid) ?? lastCpu;
      return lastCpu;
    },
    why: () => {
      try {
        return readFileSync(logFile, 'utf8').trim().slice(-1000);
      } catch {
        return '';
      }
    },
  };
  // a marker's event is the last a client gets until the next is opened:
  // it is looked for at the end of the file, as in the export file
  client.mark = (key) => {
    delete client.seenAt[key];
  };
  client.seen = (key) => {
    if (client.seenAt[key] === undefined && tailHas(outFile, needles[key], 64 * 1024))
      client.seenAt[key] = Date.now();
    return client.seenAt[key] !== undefined;
  };
  client.exited = new Promise((resolve) => {
    // 'close': the exit, and its file is complete
    child.on('close', (code, signal) => {
      clearInterval(cpuTimer);
      client.exit = { code, signal };
      stop.discard();
      resolve(client.exit);
    });
    child.on('error', (e) => {
      clearInterval(cpuTimer);
      client.exit = { code: null, signal: null, error: e.message };
      stop.discard();
      resolve(client.exit);
    });
  });
  /** SIGTERM, and wait until its output has been read to the end. */
  client.stop = async () => {
    if (client.exit === null) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // gone already
      }
    }
    const t = setTimeout(() => stop.run(), 10000);
    await client.exited;
    clearTimeout(t);
    client.counter = countFile(outFile, needles);
    return client.exit;
  };
  return client;
}

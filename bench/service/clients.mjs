// The API clients of the service benchmark: `osprey events -o json --socket
// S`, the command a user runs to follow the agent live, with its stdout piped
// back to the benchmark, which counts what each client received: lines, and
// occurrences of a few exact strings (the loop file's and the markers' paths,
// quoted as they are in the JSON) without parsing, so that counting costs
// the machine as little as it can.

import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { cpuSeconds, isAlive, killAndWaitSync } from '../lib/proc.mjs';
import { cleanup, OSPREY } from '../policy/common.mjs';

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

/**
 * Starts one `osprey events` client on the agent's socket. Its stderr goes
 * to `logFile`; its stdout is counted. Registered with the cleanup stack the
 * moment it exists.
 */
export function startClient(name, socket, logFile, needles) {
  const err = openSync(logFile, 'w');
  let child;
  try {
    child = spawn(OSPREY, ['events', '-o', 'json', '--socket', socket], {
      stdio: ['ignore', 'pipe', err],
    });
  } finally {
    closeSync(err);
  }
  const pid = child.pid;
  const stop = cleanup.add(`stop API client ${name} (pid ${pid})`, () => {
    if (pid && isAlive(pid)) killAndWaitSync(pid, 'SIGTERM', 5000);
  });
  const counter = new NeedleCounter(needles);
  // a client the agent cuts off exits on its own, and its CPU time goes with
  // it: the last reading, taken every 100 ms, stands for it then
  let lastCpu = 0;
  const cpuTimer = setInterval(() => {
    lastCpu = cpuSeconds(pid) ?? lastCpu;
  }, 100);
  const client = {
    name,
    pid,
    counter,
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
  const watched = new Map(); // key -> count at the time of mark()
  client.mark = (key) => {
    watched.set(key, counter.counts[key]);
    delete client.seenAt[key];
  };
  client.seen = (key) => client.seenAt[key] !== undefined;
  child.stdout.on('data', (chunk) => {
    counter.push(chunk);
    for (const [key, before] of watched) {
      if (counter.counts[key] > before) {
        client.seenAt[key] = Date.now();
        watched.delete(key);
      }
    }
  });
  client.exited = new Promise((resolve) => {
    // 'close': the exit and the end of stdout, so every byte has been counted
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
    return client.exit;
  };
  return client;
}

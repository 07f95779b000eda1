// One step of the service benchmark: a fresh agent in one configuration,
// its API clients if it has any, the open loop at one rate, the drain, and
// every sink's count of the loop's events against what the loop did.

import { createReadStream, existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import { ALL_BLOCKS_SQL, storedEvents } from '../../dist/src/store/blocks.js';
import { buildFingerprint } from '../lib/build.mjs';
import { CLK_TCK, cpuSeconds, MemorySampler, sleep } from '../lib/proc.mjs';
import {
  agentStatus,
  measuredLoop,
  policyInfo,
  policyProgramStats,
  REPO,
  round3,
  startAgent,
  stopAgent,
  tailHas,
} from '../policy/common.mjs';
import { startClient } from './clients.mjs';

/** a paced step counts only if the loop reached this share of its target rate */
export const REACHED = 0.95;
const DRAIN_TIMEOUT_MS = 180000;

/**
 * The configurations. Every agent gets the same flags but these: the
 * bundled config, state, socket and export file in the step's directory, no
 * metrics or UI listener (nothing on the host's ports, nothing that would
 * differ between runs), no stdout export, no rotation, and --cgroup on the
 * benchmark's cgroup (scope.mjs).
 */
// the store where the agent would put it (STATE_DIR/events.db, named here
// because startAgent turns the store off unless told where it goes); no
// size limit, so that retention deletes none of the events before they are
// counted
const storeArgs = (dir) => ['--store-path', path.join(dir, 'state', 'events.db'), '--store-max-size-mb', '0'];
export const CONFIGS = {
  A: {
    name: 'file exporter alone (store off, no API client)',
    args: ['--store-path', ''],
    store: false,
    clients: 0,
  },
  B: {
    name: 'store + file exporter + API clients',
    args: storeArgs,
    store: true,
    clients: null, // ctx.clients
  },
  // optional, to tell the store's cost from the clients'
  C: {
    name: 'store + file exporter (no API client)',
    args: storeArgs,
    store: true,
    clients: 0,
  },
  D: {
    name: 'file exporter + API clients (store off)',
    args: ['--store-path', ''],
    store: false,
    clients: null,
  },
};
const commonArgs = (ctx) => ['--cgroup', ctx.cgroup];

export async function step(ctx, setup, { config, round, rate }) {
  const cfg = CONFIGS[config];
  const nClients = cfg.clients ?? ctx.clients;
  const n = rate === 'max' ? ctx.maxOpens : Math.round(rate * ctx.stepSeconds);
  const dir = path.join(ctx.work, `${config}-${round}-${rate}`);
  const build = buildFingerprint(REPO);
  const args = typeof cfg.args === 'function' ? cfg.args(dir) : cfg.args;
  const agent = await startAgent(dir, [setup.policyFile], [...commonArgs(ctx), ...args]);
  const sampler = new MemorySampler(agent.pid, 250);
  const clients = [];
  const needles = {
    loop: `"${setup.loopFile}"`,
    ready: `"${setup.readyMarker}"`,
    done: `"${setup.doneMarker}"`,
    warmed: `"${setup.warmedMarker}"`,
  };
  try {
    for (let i = 1; i <= nClients; i++) {
      clients.push(
        startClient(
          `client-${i}`,
          agent.socket,
          path.join(dir, `client-${i}.stderr`),
          path.join(dir, `client-${i}.json`),
          needles,
        ),
      );
    }
    // every client subscribed before the first event counts
    const t0 = Date.now();
    for (;;) {
      const st = await agentStatus(agent.socket);
      if ((st.api?.clients ?? 0) >= nClients) break;
      const dead = clients.find((c) => !c.up());
      if (dead) throw new Error(`API client ${dead.name} exited: ${dead.why()}`);
      if (Date.now() - t0 > 30000)
        throw new Error(`only ${st.api?.clients} of ${nClients} API clients connected`);
      await sleep(50);
    }
    // end to end before the clock starts: an open under the prefix reached every sink
    const ready_s = await untilEverySink(ctx, agent, clients, setup.readyMarker, 'ready', 60000, 500);
    // warm-up: the same load on another file under the prefix, so that the
    // measured loop meets an agent whose code the JIT has compiled, as a
    // long-running agent's is; its events are not counted (another path) and
    // the counters below are taken once every sink has drained it
    let warmup = null;
    if (ctx.warmupSeconds > 0) {
      const wn = Math.round((rate === 'max' ? 100000 : rate) * ctx.warmupSeconds);
      const wPids = [agent.pid, ...clients.map((c) => c.pid), process.pid];
      const w = await measuredLoop(ctx, wPids, wn, setup.warmupFile, rate === 'max' ? 0 : rate);
      const wEnd = Date.now();
      const wd = await untilEverySink(
        ctx,
        agent,
        clients,
        setup.warmedMarker,
        'warmed',
        DRAIN_TIMEOUT_MS,
        200,
        wEnd,
      );
      if (cfg.store) await storeIdle(agent, wEnd);
      warmup = { opens: wn, wall_s: w.wall_s, drain_s: round3(wd.all_s) };
    }
    const st0 = await agentStatus(agent.socket);
    const c0 = policyInfo(st0, setup.policy)?.counters ?? {};
    const prog0 = policyProgramStats(st0, setup.policy);
    const pids = [agent.pid, ...clients.map((c) => c.pid)];
    const cpu0 = cpuOf(agent.pid, clients);
    const threads0 = threadCpu(agent.pid);
    // this process (the marker opener, the samplers) is ours too, not other people's
    const m = await measuredLoop(ctx, [...pids, process.pid], n, setup.loopFile, rate === 'max' ? 0 : rate);
    const loopEnd = Date.now();
    // drain: the first marker opened after the loop reaches a sink once that
    // sink has taken (or lost) every event before it; opened again every
    // 200 ms, as a full ring may drop it
    const drain = await untilEverySink(
      ctx,
      agent,
      clients,
      setup.doneMarker,
      'done',
      DRAIN_TIMEOUT_MS,
      200,
      loopEnd,
    );
    let storeDrain = null;
    if (cfg.store) storeDrain = await storeIdle(agent, loopEnd);
    const cpu1 = cpuOf(agent.pid, clients);
    const threads1 = threadCpu(agent.pid);
    const status = await agentStatus(agent.socket);
    const samples = sampler.stop();
    const clientExits = [];
    for (const c of clients) clientExits.push(await c.stop());
    const stopT0 = Date.now();
    const exit = await stopAgent(agent);
    const stop_s = (Date.now() - stopT0) / 1000;

    // what each sink got
    const expected = n + (m.loop.probe_opens ?? 0);
    const file = await countFileEvents(agent.exportFile, setup.loopFile);
    const storeRows = cfg.store ? countStoreRows(status?.store?.path, setup.policy, needles.loop) : null;
    const c = policyInfo(status, setup.policy)?.counters ?? {};
    const prog1 = policyProgramStats(status, setup.policy);
    const st = status?.store?.stats ?? null;
    const s0 = st0?.store?.stats ?? null;
    const delivered = (c.events_delivered ?? 0) - (c0.events_delivered ?? 0);
    const agentCpu = cpu1.agent - cpu0.agent;
    const threads = threadSplit(agent.pid, threads0, threads1);
    const buildAfter = buildFingerprint(REPO);
    const window = (drainS) => m.wall_s + drainS;
    const sinks = {
      file: {
        events: file.events,
        lost: expected - file.events,
        drain_s: round3(drain.file_s),
        events_per_s: round3(file.events / window(drain.file_s)),
      },
    };
    if (cfg.store) {
      sinks.store = {
        events: storeRows,
        lost: storeRows === null ? null : expected - storeRows,
        drain_s: round3(storeDrain),
        events_per_s: storeRows === null ? null : round3(storeRows / window(storeDrain)),
      };
    }
    clients.forEach((cl, i) => {
      const got = cl.counter.counts.loop;
      const dS = drain.clients_s[i];
      sinks[cl.name] = {
        events: got,
        lost: expected - got,
        drain_s: dS === null ? null : round3(dS),
        // a client cut off before the drain: what it got over the loop and the others' drain
        events_per_s: round3(
          got / window(dS ?? Math.max(drain.file_s, ...drain.clients_s.filter((x) => x !== null))),
        ),
        lines: cl.counter.lines,
        bytes: cl.counter.bytes,
        cpu_s: round3(cpu1.clients[i] - cpu0.clients[i]),
        exit: clientExits[i],
        disconnected_before_drain: dS === null,
      };
    });
    const lostAll = Object.values(sinks).map((s) => s.lost);
    const zeroLoss = lostAll.every((l) => l === 0);
    const worst = Math.max(...lostAll.map((l) => (l === null ? Number.POSITIVE_INFINITY : l)));
    const achieved = m.loop.opens_per_s;
    const drains = Object.values(sinks).map((s) => s.drain_s);
    // the sinks still there at the end (a client cut off has no drain)
    const drainAll = Math.max(...drains.filter((x) => x !== null));
    return {
      ...m,
      config,
      opens: n,
      events_expected: expected,
      rate_target: rate === 'max' ? null : rate,
      opens_per_s: round3(achieved),
      reached_target: rate === 'max' ? true : achieved >= rate * REACHED,
      sinks,
      zero_loss: zeroLoss,
      worst_sink_lost: worst,
      file_lost: sinks.file.lost,
      // the kernel's and the agent's counters over the step (the markers are a few events)
      kernel_posted: (c.events_posted ?? 0) - (c0.events_posted ?? 0),
      kernel_ringbuf_drops: (c.ringbuf_drops ?? 0) - (c0.ringbuf_drops ?? 0),
      kernel_pending_drops: (c.pending_drops ?? 0) - (c0.pending_drops ?? 0),
      decode_errors: c.decode_errors ?? null,
      event_errors: c.event_errors ?? null,
      events_delivered: delivered,
      warmup,
      // over the step: the warm-up's drops are not in them
      agent_drops: diffCounters(status?.drops, st0?.drops),
      export_file: status?.export_file ?? null,
      store_status: status?.store ?? null,
      store_written: st && s0 ? st.written - s0.written : null,
      store_skipped: st ? st.skipped - (s0?.skipped ?? 0) : null,
      store_failed: st ? st.failed - (s0?.failed ?? 0) : null,
      store_bus_dropped:
        status?.store?.bus_dropped == null ? null : status.store.bus_dropped - (st0?.store?.bus_dropped ?? 0),
      store_deleted_by_retention: st ? st.deleted_by_retention : null,
      store_bytes: st ? st.bytes : null,
      api_clients_at_end: status?.api?.clients ?? null,
      events_total: (status?.events?.total ?? 0) - (st0?.events?.total ?? 0),
      bpf_ns_per_run:
        prog0 && prog1 && prog1.run_count > prog0.run_count
          ? Math.round((prog1.run_time_ns - prog0.run_time_ns) / (prog1.run_count - prog0.run_count))
          : null,
      drain_s: round3(drainAll),
      ready_s: round3(ready_s.all_s),
      startup_s: round3(agent.startup_s),
      stop_s: round3(stop_s),
      // over the idle second before the loop, the loop and the drain
      agent_cpu_s: round3(agentCpu),
      agent_cpu_us_per_event: delivered ? round3((agentCpu / delivered) * 1e6) : null,
      // the JavaScript thread, which every event goes through, and the rest
      // (the store's writer thread, libuv's pool, V8's GC and compiler threads)
      agent_main_thread_cpu_s: round3(threads.main),
      agent_other_threads_cpu_s: round3(threads.others),
      agent_threads_cpu_s: threads.byName,
      build,
      build_changed_during_step: buildAfter.id !== build.id ? buildAfter : false,
      clients_cpu_s: round3(
        cpu1.clients.reduce((a, b) => a + b, 0) - cpu0.clients.reduce((a, b) => a + b, 0),
      ),
      counter_cpu_s: round3(cpu1.self - cpu0.self),
      agent_peak_rss_mb: samples.length ? round3(Math.max(...samples.map((s) => s.hwm_kb)) / 1024) : null,
      export_bytes: file.bytes,
      export_bytes_per_event: file.lines ? Math.round(file.bytes / file.lines) : null,
      bad_lines: file.bad,
      agent_exit: exit,
      note:
        `${Math.round(achieved)} opens/s; lost: ${Object.entries(sinks)
          .map(([k, s]) => `${k} ${s.lost}`)
          .join(
            ', ',
          )} (ring ${(c.ringbuf_drops ?? 0) - (c0.ringbuf_drops ?? 0)}, bus ${(status?.drops?.bus_queue_overflow ?? 0) - (st0?.drops?.bus_queue_overflow ?? 0)}` +
        `${cfg.store ? `, store skipped ${st ? st.skipped - (s0?.skipped ?? 0) : '?'}` : ''}${nClients ? `, api ${(status?.drops?.api_slow_client_dropped ?? 0) - (st0?.drops?.api_slow_client_dropped ?? 0)}` : ''})` +
        `; drain ${drainAll.toFixed(2)} s; agent CPU ${agentCpu.toFixed(2)} s`,
    };
  } finally {
    sampler.stop();
    for (const cl of clients) if (cl.up()) await cl.stop();
    agent.stopNow();
    // a flat-out step writes hundreds of MB: do not let them pile up in /tmp
    if (!ctx.keep) rmSync(dir, { recursive: true, force: true });
  }
}

/** CPU seconds of each thread of a process: tid -> {name, cpu}. */
function threadCpu(pid) {
  const out = new Map();
  let tids = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      out.set(Number(tid), { name, cpu: (Number(f[11]) + Number(f[12])) / CLK_TCK });
    } catch {
      // the thread ended
    }
  }
  return out;
}

/** The main thread's CPU over the window and the other threads', also by thread name. */
function threadSplit(pid, t0, t1) {
  let main = 0;
  let others = 0;
  const byName = {};
  for (const [tid, t] of t1) {
    const d = t.cpu - (t0.get(tid)?.cpu ?? 0);
    if (tid === pid) main += d;
    else {
      others += d;
      byName[t.name] = round3((byName[t.name] ?? 0) + d);
    }
  }
  return { main, others, byName };
}

function cpuOf(agentPid, clients) {
  return {
    agent: cpuSeconds(agentPid) ?? 0,
    clients: clients.map((c) => c.cpu()),
    self: cpuSeconds(process.pid) ?? 0,
  };
}

/**
 * Opens `marker` until its event has reached the export file and every API
 * client still connected; returns the seconds each sink took, from `since`.
 * A client that has gone (the agent cut it off as too slow) is null.
 */
/** b - a for every numeric counter of b (a counter absent from a counts from 0). */
function diffCounters(b, a) {
  if (!b) return null;
  const out = {};
  for (const [k, v] of Object.entries(b)) out[k] = typeof v === 'number' ? v - (a?.[k] ?? 0) : v;
  return out;
}

async function untilEverySink(
  ctx,
  agent,
  clients,
  marker,
  key,
  timeoutMs,
  reopenEveryMs,
  since = Date.now(),
) {
  const t0 = Date.now();
  for (const c of clients) c.mark(key);
  const needle = `"${marker}"`;
  let fileAt = null;
  let last = 0;
  for (;;) {
    if (Date.now() - last >= reopenEveryMs) {
      ctx.opener.open(marker);
      last = Date.now();
    }
    await sleep(20);
    if (fileAt === null && tailHas(agent.exportFile, needle)) fileAt = Date.now();
    const pending = clients.filter((c) => c.up() && !c.seen(key));
    if (fileAt !== null && pending.length === 0) break;
    if (!agent.up()) throw new Error(`the agent exited while waiting for the event of ${marker}`);
    if (Date.now() - t0 > timeoutMs) {
      const who = [...(fileAt === null ? ['the export file'] : []), ...pending.map((c) => c.name)];
      throw new Error(`the event of ${marker} did not reach ${who.join(', ')} within ${timeoutMs / 1000} s`);
    }
  }
  const clients_s = clients.map((c) => (c.seen(key) ? (c.seenAt[key] - since) / 1000 : null));
  const file_s = (fileAt - since) / 1000;
  return { file_s, clients_s, all_s: Math.max(file_s, ...clients_s.filter((x) => x !== null)) };
}

/** Waits until the store's queue is empty (the done marker is in it by then); seconds from `since`. */
async function storeIdle(agent, since) {
  const t0 = Date.now();
  for (;;) {
    const st = await agentStatus(agent.socket);
    const s = st?.store?.stats;
    if (!s) throw new Error(`the event store is not open: ${JSON.stringify(st?.store ?? st?.error)}`);
    if (s.queued === 0) return (Date.now() - since) / 1000;
    if (Date.now() - t0 > DRAIN_TIMEOUT_MS) throw new Error(`the store still had ${s.queued} events queued`);
    await sleep(50);
  }
}

/** process_kprobe events of openat on the loop's file in the export file, each parsed and checked. */
async function countFileEvents(file, loopFile) {
  const out = { events: 0, lines: 0, bytes: 0, bad: 0 };
  out.bytes = statSync(file).size;
  const rl = createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY });
  const needle = `"${loopFile}"`;
  for await (const line of rl) {
    if (!line) continue;
    out.lines++;
    if (!line.includes(needle)) continue;
    let ev;
    try {
      ev = JSON.parse(line);
    } catch {
      out.bad++;
      continue;
    }
    const k = ev.process_kprobe;
    if (k && /sys_openat$/.test(k.function_name ?? '') && k.args?.[1]?.string_arg === loopFile) out.events++;
  }
  return out;
}

/** The loop's events in the store, read from its file once the agent has closed it. */
function countStoreRows(file, policy, needle) {
  if (!file || !existsSync(file)) return null;
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    // the store keeps events in blocks (src/store/blocks.ts); its reader picks them out
    let n = 0;
    for (const { json, entry, dict } of storedEvents(db.prepare(ALL_BLOCKS_SQL).iterate())) {
      if (
        dict.types[entry.type] === 'process_kprobe' &&
        dict.policies[entry.policy] === policy &&
        json.includes(needle)
      )
        n++;
    }
    return n;
  } finally {
    db.close();
  }
}

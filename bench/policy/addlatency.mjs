// Measurement 3: how long does `osprey policy add` of a typical policy take?
// It returns only once the policy's programs are attached, so the time from
// invoking it until it returns is the time until the policy is in force.
//
// Against a running agent, K times each (after warm-up adds that are kept
// apart), interleaved:
//   cli     bin/osprey policy add FILE --socket S, spawn to exit; then delete
//   api     the request the CLI makes (POST /v1/policies), from this process
// with their baselines in the same run: the CLI doing nothing
// (bin/osprey version, and bin/osprey policy list, a round trip that loads
// nothing) and the API doing nothing (GET /v1/health). After each add, an
// open of the trigger file must be posted at once: the add's return is
// checked to mean "in force".
//
// Then in this process, K times: parse, compile, PolicyProgram.load (kernel
// object load, verifier, maps, attach) and close, each timed, and the kernel
// object load alone (the generic object through Collection.load).

import { closeSync, mkdirSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { median, run } from '../lib/proc.mjs';
import {
  agentStatus,
  agentUnavailable,
  api,
  cleanup,
  log,
  OSPREY,
  policyCli,
  prefixSafePath,
  quietSecond,
  REPO,
  round3,
  startAgent,
  stopAgent,
} from './common.mjs';
import { typicalPolicy } from './policies.mjs';

const POLICY = 'osprey-bench-typical';
const WARMUP = 2;

export async function runAddLatency(ctx) {
  const out = { params: { adds: ctx.adds, warmup: WARMUP, policy: POLICY, pause_ms: ctx.addPauseMs } };
  const triggerDir = path.join(ctx.work, 'trigger');
  mkdirSync(triggerDir);
  const trigger = prefixSafePath(triggerDir, 'file');
  writeFileSync(trigger, 'osprey bench\n');
  const policyFile = path.join(ctx.work, 'typical.yaml');
  const yaml = typicalPolicy(POLICY, `${triggerDir}/`);
  writeFileSync(policyFile, yaml);
  out.policy_yaml = yaml;

  const why = await agentUnavailable();
  if (why) {
    out.agent = { skipped: why };
    log(`add latency: agent part skipped: ${why}`);
  } else {
    const cli = await policyCli();
    if (cli !== true) log(`add latency: the policy CLI is not available (${cli}); timing the API only`);
    out.agent = await throughAgent(ctx, { trigger, policyFile, yaml, cli: cli === true, cliWhy: cli });
  }
  try {
    out.in_process = await inProcess(ctx, { trigger, yaml });
  } catch (err) {
    out.in_process = { error: err?.stack ?? String(err) };
    log(`add latency: in-process part failed: ${err.message}`);
  }
  return out;
}

async function posted(socket) {
  const r = await api(socket, 'GET', `/v1/policies/${POLICY}`);
  return r.json?.counters?.events_posted ?? null;
}

/** Opens the trigger and checks the policy posted it: the add's return meant "in force". */
async function checkInForce(socket, trigger) {
  closeSync(openSync(trigger, 'r'));
  const n = await posted(socket);
  if (!(n >= 1))
    throw new Error(`an open of ${trigger} right after the add returned was not posted (posted ${n})`);
}

async function throughAgent(ctx, t) {
  const dir = path.join(ctx.work, 'add-agent');
  const agent = await startAgent(dir, []);
  const socket = agent.socket;
  const samples = {
    api_add: [],
    api_delete: [],
    api_health: [],
    agent_load_ms: [],
    cli_add: [],
    cli_delete: [],
  };
  Object.assign(samples, { cli_version: [], cli_list: [], agent_load_ms_cli: [] });
  const warm = { api_add: [], cli_add: [], agent_load_ms: [] };
  const errors = [];
  const quiet = await quietSecond(ctx);
  const t0 = Date.now();
  try {
    for (let i = 0; i < WARMUP + ctx.adds; i++) {
      const w = i < WARMUP;
      const order = i % 2 === 0 ? ['api', 'cli'] : ['cli', 'api'];
      for (const how of order) {
        // a settled agent (the policy object for its next add verified), or back to back
        if (ctx.addPauseMs) await sleep(ctx.addPauseMs);
        if (how === 'api') {
          const add = await api(
            socket,
            'POST',
            `/v1/policies?source=${encodeURIComponent(t.policyFile)}`,
            t.yaml,
          );
          if (add.status !== 201)
            throw new Error(`POST /v1/policies answered ${add.status}: ${add.text.slice(0, 500)}`);
          await checkInForce(socket, t.trigger);
          const del = await api(socket, 'DELETE', `/v1/policies/${POLICY}`);
          if (del.status !== 200) throw new Error(`DELETE answered ${del.status}: ${del.text.slice(0, 300)}`);
          (w ? warm.api_add : samples.api_add).push(add.ms);
          (w ? warm.agent_load_ms : samples.agent_load_ms).push(add.json.load_ms);
          if (!w) samples.api_delete.push(del.ms);
        } else if (t.cli) {
          const a0 = process.hrtime.bigint();
          const add = await run(OSPREY, ['policy', 'add', t.policyFile, '--socket', socket]);
          const addMs = Number(process.hrtime.bigint() - a0) / 1e6;
          if (add.code !== 0)
            throw new Error(
              `osprey policy add exited ${add.code}: ${(add.stderr || add.stdout).slice(0, 500)}`,
            );
          await checkInForce(socket, t.trigger);
          const info = await api(socket, 'GET', `/v1/policies/${POLICY}`);
          const d0 = process.hrtime.bigint();
          const del = await run(OSPREY, ['policy', 'delete', POLICY, '--socket', socket]);
          const delMs = Number(process.hrtime.bigint() - d0) / 1e6;
          if (del.code !== 0)
            throw new Error(
              `osprey policy delete exited ${del.code}: ${(del.stderr || del.stdout).slice(0, 300)}`,
            );
          (w ? warm.cli_add : samples.cli_add).push(addMs);
          if (!w) {
            samples.cli_delete.push(delMs);
            samples.agent_load_ms_cli.push(info.json?.load_ms ?? null);
          }
        }
      }
      if (w) continue;
      // the floors, in the same rhythm
      samples.api_health.push((await api(socket, 'GET', '/v1/health')).ms);
      const v0 = process.hrtime.bigint();
      const v = await run(OSPREY, ['version']);
      if (v.code === 0) samples.cli_version.push(Number(process.hrtime.bigint() - v0) / 1e6);
      if (t.cli) {
        const l0 = process.hrtime.bigint();
        const l = await run(OSPREY, ['policy', 'list', '-o', 'json', '--socket', socket]);
        if (l.code === 0) samples.cli_list.push(Number(process.hrtime.bigint() - l0) / 1e6);
      }
    }
  } catch (err) {
    errors.push(err.message);
    log(`add latency: ${err.message}`);
  }
  const elapsed_s = (Date.now() - t0) / 1000;
  // nothing of the policy may be left behind in the agent
  const status = await agentStatus(socket);
  const leftover = (status?.programs ?? []).filter((p) => p.policy === POLICY).length;
  await stopAgent(agent);
  if (!ctx.keep) rmSync(dir, { recursive: true, force: true });
  const stats = {};
  for (const [k, v] of Object.entries(samples)) stats[k] = describe(v.filter((x) => typeof x === 'number'));
  return {
    cli: t.cli ? 'bin/osprey policy add' : `not available: ${t.cliWhy}`,
    ...quiet,
    elapsed_s: round3(elapsed_s),
    stats,
    warmup_ms: Object.fromEntries(Object.entries(warm).map(([k, v]) => [k, v.map(round3)])),
    samples_ms: Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, v.map(round3)])),
    programs_left_after_deletes: leftover,
    errors,
  };
}

async function inProcess(ctx, t) {
  const dist = (p) => import(path.join(REPO, 'dist/src', p));
  const { parsePolicyText, compilePolicy, kernelCapabilities } = await dist('policy/index.js');
  const { PolicyProgram } = await dist('sensors/tracing/index.js');
  const { ProcessSensor } = await dist('sensors/process/sensor.js');
  const k = await dist('kernel/index.js');
  const features = k.probeFeatures();
  const kernel = kernelCapabilities(features);
  const tracefs = k.tracefsRoot();
  const quiet = await quietSecond(ctx);
  // matchBinaries needs the process sensor's table, as in the agent
  const sensor = ProcessSensor.start({ onRecords: () => {} });
  const stopSensor = cleanup.add('stop in-process process sensor', () => sensor.stop()).run;
  const s = { parse: [], compile: [], load: [], close: [], total: [], object_load: [], object_close: [] };
  const ms = (a, b) => Number(b - a) / 1e6;
  const now = () => process.hrtime.bigint();
  try {
    for (let i = 0; i < WARMUP + ctx.adds; i++) {
      const t0 = now();
      const r = parsePolicyText(t.yaml, 'typical.yaml', {
        kernel,
        ...(tracefs ? { tracefsRoot: tracefs } : {}),
      });
      if (r.errors.length)
        throw new Error(`typical policy does not parse: ${r.errors.map(String).join('; ')}`);
      const t1 = now();
      const c = compilePolicy(r.policies[0], { policyId: 1000 + i, agentPid: process.pid });
      const t2 = now();
      const prog = PolicyProgram.load(c.tables, { procsMapFd: sensor.processTableFd(), onRecords: () => {} });
      const t3 = now();
      const closeProg = cleanup.add('close in-process policy', () => prog.close());
      closeSync(openSync(t.trigger, 'r'));
      const postedNow = prog.counters().posted;
      const t4 = now();
      closeProg.run();
      const t5 = now();
      if (postedNow < 1)
        throw new Error('in-process load: the trigger open was not posted right after load returned');
      // the kernel object alone: open, create maps, verify and load every program
      const o0 = now();
      const coll = k.Collection.load(k.bpfObjectPath('generic'), {
        maxEntries: { heap: Math.max(k.possibleCpus(), availableParallelism()), events: 1 << 20 },
        reuseMaps: { osprey_procs: sensor.processTableFd() },
      });
      const o1 = now();
      coll.close();
      const o2 = now();
      if (i < WARMUP) continue;
      s.parse.push(ms(t0, t1));
      s.compile.push(ms(t1, t2));
      s.load.push(ms(t2, t3));
      s.close.push(ms(t4, t5));
      s.total.push(ms(t0, t3));
      s.object_load.push(ms(o0, o1));
      s.object_close.push(ms(o1, o2));
    }
  } finally {
    stopSensor();
  }
  const stats = {};
  for (const [key, v] of Object.entries(s)) stats[key] = describe(v);
  return {
    ...quiet,
    stats,
    samples_ms: Object.fromEntries(Object.entries(s).map(([key, v]) => [key, v.map(round3)])),
  };
}

function describe(xs) {
  if (xs.length === 0) return null;
  const sorted = [...xs].sort((a, b) => a - b);
  const q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * (sorted.length - 1) + 0.5))];
  return {
    n: xs.length,
    median_ms: round3(median(xs)),
    p90_ms: round3(q(0.9)),
    min_ms: round3(sorted[0]),
    max_ms: round3(sorted.at(-1)),
  };
}

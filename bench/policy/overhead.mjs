// Measurement 1: what does a loaded file-monitoring policy that matches
// nothing cost a process that opens and closes a file in a loop?
//   a  no observer (the baseline)
//   b  Osprey with an openat policy whose Prefix filter never matches: the
//      program runs on every openat, reads the path, finds no match, posts
//      nothing — the in-kernel filter alone
//   c  auditd with a watch rule on the same never-opened directory
//   f  the floor: a BPF program that does nothing, on the tracepoint (b)'s
//      hook uses — what any program there costs before it does any work

import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, sleep } from '../lib/proc.mjs';
import {
  AUDIT_KEY,
  agentStatus,
  agentUnavailable,
  auditUnavailable,
  countAuditKeyRecords,
  log,
  measuredLoop,
  otherBenchmarksGone,
  policyInfo,
  policyProgramStats,
  prefixSafePath,
  round3,
  startAgent,
  stopAgent,
  withAudit,
  withKernelBpfStats,
} from './common.mjs';
import { openatPrefixPolicy } from './policies.mjs';

export const OVERHEAD_MODES = {
  a: 'no agent (baseline)',
  b: 'Osprey: openat policy, Prefix never matches',
  c: 'auditd: watch rule (-w DIR -p r), never matches',
  f: 'floor: a BPF program that does nothing, on the same tracepoint',
};
const POLICY = 'osprey-bench-never';
/** why a mode cannot run here, or null */
const UNAVAILABLE = {
  b: () => agentUnavailable(),
  c: () => auditUnavailable(),
  f: (ctx) => floorUnavailable(ctx),
};

export async function runOverhead(ctx) {
  const skipped = {};
  for (const m of ctx.overheadModes) {
    const why = (await UNAVAILABLE[m]?.(ctx)) ?? null;
    if (why) {
      skipped[m] = why;
      log(`overhead: skipping (${m}) ${OVERHEAD_MODES[m]}: ${why}`);
    }
  }
  const setup = {
    // exists (auditd's directory watch needs it), stays empty, never opened
    neverDir: path.join(ctx.work, 'never'),
    loopFile: prefixSafePath(path.join(ctx.work, 'loop'), 'target'),
    policyFile: path.join(ctx.work, 'never.yaml'),
  };
  mkdirSync(setup.neverDir);
  mkdirSync(path.dirname(setup.loopFile));
  writeFileSync(setup.loopFile, 'osprey bench\n');
  writeFileSync(setup.policyFile, openatPrefixPolicy(POLICY, `${setup.neverDir}/`));
  log(
    `overhead: ${ctx.opens} openat+close of ${setup.loopFile}, ${ctx.repeat} round(s), modes ${ctx.overheadModes.join('')}`,
  );

  const runs = [];
  const discarded = [];
  for (let round = 1; round <= ctx.repeat; round++) {
    for (const m of ctx.overheadModes) {
      if (skipped[m]) continue;
      for (let attempt = 0; ; attempt++) {
        log(
          `overhead round ${round}/${ctx.repeat}: (${m}) ${OVERHEAD_MODES[m]}${attempt ? ` — attempt ${attempt + 1}` : ''}`,
        );
        const r = await runMode(m, round, attempt, ctx, setup);
        log(`  wall ${Number(r.wall_s).toFixed(3)} s${r.note ? ` — ${r.note}` : ''}`);
        if (r.error) log(`  (${m}) failed: ${r.error}`);
        await sleep(1000);
        if (r.contended && attempt < ctx.retries) {
          log(
            `  others used ${(r.others_cpu_fraction * 100).toFixed(0)} % of the machine during the loop; running it again`,
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
  return summarize(ctx, runs, discarded, skipped, setup);
}

async function runMode(mode, round, attempt, ctx, setup) {
  const base = { mode, round, wall_s: Number.NaN };
  try {
    if (mode === 'a') return { ...base, ...(await measuredLoop(ctx, [], ctx.opens, setup.loopFile)) };
    if (mode === 'b') return { ...base, ...(await runOsprey(round, attempt, ctx, setup)) };
    if (mode === 'c') return { ...base, ...(await runAuditd(round, attempt, ctx, setup)) };
    if (mode === 'f') return { ...base, ...(await runFloor(ctx, setup)) };
  } catch (err) {
    return { ...base, error: err instanceof Error ? err.message : String(err) };
  }
  return { ...base, error: 'unknown mode' };
}

async function runOsprey(round, attempt, ctx, setup) {
  const dir = path.join(ctx.work, `overhead-osprey-${round}-${attempt}`);
  // as users run it: without BPF run-time statistics, which would add two
  // clock reads to every run of the program measured here
  const agent = await startAgent(dir, [setup.policyFile], [], { bpfStats: false });
  try {
    // Evidence that the hook is live before the clock starts: its program
    // runs on an open (counted with the kernel's statistics on for a moment).
    const armed = await withKernelBpfStats(async () => {
      const before = policyProgramStats(await agentStatus(agent.socket), POLICY);
      if (!before) throw new Error(`status lists no program of policy ${POLICY}`);
      closeSync(openSync(setup.loopFile, 'r'));
      const after = policyProgramStats(await agentStatus(agent.socket), POLICY);
      if (!(after.run_count > before.run_count)) {
        throw new Error(`the program of ${POLICY} did not run on an open (run_count ${after.run_count})`);
      }
      return after;
    });
    const m = await measuredLoop(ctx, [agent.pid], ctx.opens, setup.loopFile);
    // The program's own cost, from a shorter loop with the statistics on
    // (not part of the measured time above).
    const { calibration, runsDuring, nsPerRun } = await timedRuns(ctx, setup, [agent.pid], async () =>
      policyProgramStats(await agentStatus(agent.socket), POLICY),
    );
    const status = await agentStatus(agent.socket);
    const info = policyInfo(status, POLICY);
    const exit = await stopAgent(agent);
    return {
      ...m,
      startup_s: round3(agent.startup_s),
      armed_run_count: armed.run_count,
      // every openat on the machine runs the program, the loop's and others'
      bpf_runs: runsDuring,
      bpf_calibration_opens: calibration,
      bpf_ns_per_run: nsPerRun === null ? null : Math.round(nsPerRun),
      events_posted: info?.counters?.events_posted ?? null,
      policy_load_ms: info?.load_ms ?? null,
      agent_exit: exit,
      note: `BPF ${nsPerRun === null ? '?' : Math.round(nsPerRun)} ns/run over ${runsDuring} runs of a ${calibration}-open loop with statistics on, posted ${info?.counters?.events_posted}`,
    };
  } finally {
    agent.stopNow();
    if (!ctx.keep) rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Runs of a program and its ns per run over a loop a tenth as long as the
 * measured one, with the kernel's statistics on for it alone; `stats` reads
 * the program's {run_count, run_time_ns}.
 */
async function timedRuns(ctx, setup, observerPids, stats) {
  const calibration = Math.max(1, Math.round(ctx.opens / 10));
  return withKernelBpfStats(async () => {
    const before = await stats();
    await measuredLoop(ctx, observerPids, calibration, setup.loopFile);
    const after = await stats();
    const runs = after.run_count - before.run_count;
    return {
      calibration,
      runsDuring: runs,
      nsPerRun: runs > 0 ? (after.run_time_ns - before.run_time_ns) / runs : null,
    };
  });
}

async function runAuditd(round, attempt, ctx, setup) {
  const dir = path.join(ctx.work, `overhead-auditd-${round}-${attempt}`);
  const watch = `${setup.neverDir}/`;
  // Audit settings are global: with another benchmark changing and restoring
  // them at the same time, one of the two would put back the other's values.
  const busy = await otherBenchmarksGone(ctx.quietWaitS);
  if (busy.length)
    throw new Error(
      `another benchmark is running, whose audit settings would race with ours: ${busy.join('; ')}`,
    );
  try {
    return await withAudit(
      dir,
      ['-w', watch, '-p', 'r', '-k', AUDIT_KEY],
      ['-W', watch, '-p', 'r', '-k', AUDIT_KEY],
      async ({ pids, logFile }) => {
        const m = await measuredLoop(ctx, pids, ctx.opens, setup.loopFile);
        await sleep(500); // auditd writes asynchronously
        const records = countAuditKeyRecords(logFile);
        return { ...m, audit_records: records, note: `records with the rule's key: ${records ?? '?'}` };
      },
    );
  } finally {
    if (!ctx.keep) rmSync(dir, { recursive: true, force: true });
  }
}

const FLOOR_SOURCE = fileURLToPath(new URL('./floor.bpf.c', import.meta.url));
const FLOOR_PROGRAM = 'osprey_bench_floor';

/** Compiles the floor's program into the scratch directory (once); a reason when it cannot be. */
async function floorUnavailable(ctx) {
  ctx.floorObject = path.join(ctx.work, 'floor.bpf.o');
  try {
    execFileSync(
      process.env.CLANG ?? 'clang-19',
      ['-O2', '-g', '-target', 'bpf', '-c', FLOOR_SOURCE, '-o', ctx.floorObject],
      { stdio: 'pipe' },
    );
  } catch (err) {
    const why = String(err.stderr ?? err.message)
      .trim()
      .split('\n')[0];
    return `cannot compile ${FLOOR_SOURCE} with clang-19 (set CLANG): ${why}`;
  }
  try {
    await import('../../dist/src/kernel/index.js');
  } catch {
    return 'Osprey is not built (npm run build): the floor is loaded through its kernel bridge';
  }
  return null;
}

/** The loop with the floor's program attached (detached again whatever happens). */
async function runFloor(ctx, setup) {
  const { Collection, programStats } = await import('../../dist/src/kernel/index.js');
  const coll = Collection.load(ctx.floorObject);
  try {
    coll.attachTracepoint(FLOOR_PROGRAM, 'syscalls', 'sys_enter_openat');
    const m = await measuredLoop(ctx, [], ctx.opens, setup.loopFile);
    // its ns per run with the statistics on, as (b)'s program is measured:
    // what the statistics' own clock reads and an empty run cost, which
    // the summary takes off (b)'s to leave the work of Osprey's program
    const fd = coll.programs().find((p) => p.name === FLOOR_PROGRAM)?.fd;
    const nsPerRun =
      fd === undefined
        ? null
        : (
            await timedRuns(ctx, setup, [], async () => {
              const st = programStats(fd);
              return { run_count: st.runCount, run_time_ns: st.runTimeNs };
            })
          ).nsPerRun;
    return { ...m, bpf_ns_per_run: nsPerRun === null ? null : Math.round(nsPerRun) };
  } finally {
    coll.close();
  }
}

function summarize(ctx, runs, discarded, skipped, setup) {
  const ok = runs.filter((r) => !r.error);
  const by = (m) => ok.filter((r) => r.mode === m);
  const baseWall = median(by('a').map((r) => r.wall_s));
  // the loop's own CPU (its syscalls, and the BPF program or audit work done
  // in them) plus the observer's
  const cpuCost = (r) => r.loop_cpu_s + (r.observer_cpu_s ?? 0);
  const baseCpu = median(by('a').map(cpuCost));
  const modes = {};
  for (const m of ctx.overheadModes) {
    const rs = by(m);
    if (rs.length === 0) {
      modes[m] = { name: OVERHEAD_MODES[m], skipped: skipped[m] ?? 'no successful run' };
      continue;
    }
    const med = median(rs.map((r) => r.wall_s));
    const nums = (k) => rs.map((r) => r[k]).filter((v) => typeof v === 'number');
    const entry = {
      name: OVERHEAD_MODES[m],
      runs: rs.length,
      wall_s_median: round3(med),
      wall_s_all: rs.map((r) => round3(r.wall_s)),
      ratio_vs_a: baseWall ? round3(med / baseWall) : null,
      overhead_pct: baseWall ? round3((med / baseWall - 1) * 100) : null,
      paired_ratios: rs.map((r) => {
        const a = by('a').find((x) => x.round === r.round);
        return a ? round3(r.wall_s / a.wall_s) : null;
      }),
      ns_per_open_close_median: round3((med / ctx.opens) * 1e9),
      loop_cpu_s_median: round3(median(rs.map((r) => r.loop_cpu_s))),
      loop_sys_s_median: round3(median(rs.map((r) => r.loop.sys_s))),
      observer_cpu_s_median: nums('observer_cpu_s').length ? round3(median(nums('observer_cpu_s'))) : null,
      cpu_cost_s_median: round3(median(rs.map(cpuCost))),
      cpu_cost_s_all: rs.map((r) => round3(cpuCost(r))),
      cpu_ratio_vs_a: baseCpu ? round3(median(rs.map(cpuCost)) / baseCpu) : null,
      system_busy_cpu_s_median: round3(median(nums('system_busy_cpu_s'))),
      background_busy_cores_all: rs.map((r) => r.background_busy_cores),
      others_cpu_fraction_all: rs.map((r) => r.others_cpu_fraction),
      other_observers: [...new Set(rs.flatMap((r) => r.other_observers ?? []))],
      other_benchmarks: [...new Set(rs.flatMap((r) => r.other_benchmarks ?? []))],
    };
    if (m === 'b' || m === 'f') {
      entry.bpf_ns_per_run_median = nums('bpf_ns_per_run').length
        ? Math.round(median(nums('bpf_ns_per_run')))
        : null;
    }
    if (m === 'b') {
      entry.bpf_runs_all = rs.map((r) => r.bpf_runs);
      entry.events_posted_all = rs.map((r) => r.events_posted);
      entry.policy_load_ms_all = rs.map((r) => r.policy_load_ms);
    }
    if (m === 'c') {
      entry.audit_records_all = rs.map((r) => r.audit_records);
      entry.kernel_audit_lost_all = rs.map((r) => r.kernel_audit_lost);
      entry.audit_rules = rs[0]?.audit_rules_in_force ?? null;
    }
    modes[m] = entry;
  }
  // A floor of (b)'s overhead that the machine's noise does not move: the
  // work of Osprey's program beyond an empty one on the same tracepoint (both
  // timed by the kernel, statistics on, so their clock reads cancel) over
  // (a)'s time per open+close. (b) adds at least that (and the tracepoint's
  // own path, which (f) adds too), whatever its wall time says.
  const b = modes.b;
  const fl = modes.f;
  const a = modes.a;
  const programFloor =
    b?.bpf_ns_per_run_median != null && fl?.bpf_ns_per_run_median != null && a?.ns_per_open_close_median
      ? {
          ns_per_open: b.bpf_ns_per_run_median - fl.bpf_ns_per_run_median,
          pct: round3(
            ((b.bpf_ns_per_run_median - fl.bpf_ns_per_run_median) / a.ns_per_open_close_median) * 100,
          ),
        }
      : null;
  return {
    program_floor: programFloor,
    params: {
      opens: ctx.opens,
      repeat: ctx.repeat,
      modes: ctx.overheadModes.join(''),
      loop_file: setup.loopFile,
      never_prefix: `${setup.neverDir}/`,
    },
    modes,
    errors: runs.filter((r) => r.error).map((r) => ({ mode: r.mode, round: r.round, error: r.error })),
    runs,
    discarded_contended_runs: discarded,
  };
}

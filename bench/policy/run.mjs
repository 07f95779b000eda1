// The policy benchmark: what a loaded TracingPolicy costs, how many matched
// events Osprey exports without loss, and how long `osprey policy add` takes.
//   1  overhead of a policy that matches nothing on an openat+close loop,
//      against no observer and against auditd with an equivalent watch rule
//   2  throughput of matched events to a JSON-lines file, zero-loss rate
//   3  latency of `osprey policy add` until the policy is in force
// See bench/README.md (Policy) for the method. Run it through bench/policy/run.sh.

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { median, runBenchmark, saveResults } from '../lib/proc.mjs';
import { runAddLatency } from './addlatency.mjs';
import {
  buildDriver,
  CONTENDED_FRACTION,
  cleanup,
  log,
  nonNegativeInt,
  otherBenchmarks,
  pacedLoopFlags,
  positiveInt,
  QUIET_CORES,
  REPO,
  UsageError,
} from './common.mjs';
import { OVERHEAD_MODES, runOverhead } from './overhead.mjs';
import { runThroughput } from './throughput.mjs';

const RESULTS = path.join(REPO, 'bench/results');
const TARGETS = { overheadPct: 3, eventsPerS: 200000, addMs: 100 };

const USAGE = `usage: bench/policy/run.sh [--measure 123] [--opens N] [--repeat R] [--modes abcf]
                          [--rates LIST] [--step-seconds S] [--warmup-seconds W] [--max-opens N] [--adds K] [--add-pause-ms P]
                          [--quiet-wait S] [--retries K] [--keep]

  --measure LIST    which measurements, e.g. "13" (default 123):
                    1 overhead of a policy that matches nothing, 2 matched-event throughput,
                    3 osprey policy add latency
  --opens N         opens per loop in measurement 1 (default 1000000, at least 1000000 for a reported run)
  --repeat R        rounds of measurements 1 and 2; each round runs every mode or rate once (default 5)
  --modes LIST      modes of measurement 1 (default abcf; a is required): a none, b Osprey,
                    c auditd, f the floor (a program that does nothing on the same tracepoint)
  --rates LIST      paced rates of measurement 2 in opens/s, "max" = flat out
                    (default 10000,15000,20000,25000,30000,40000,50000,100000,200000,max)
  --step-seconds S  seconds each paced step of measurement 2 runs (default 2)
  --warmup-seconds W  seconds of the same load before each step's measured loop,
                    on another file, not counted: the fresh agent's code is
                    compiled by then (default 2; 0 measures a cold agent)
  --max-opens N     opens of the flat-out step and of its no-agent baseline (default 600000)
  --adds K          adds+deletes timed in measurement 3, after 2 warm-up ones (default 20)
  --add-pause-ms P  pause before each add of measurement 3 (default 1000): an add into
                    a settled agent, whose next policy object the kernel has verified;
                    0 = adds back to back, each waiting for that verification
  --quiet-wait S    before each measured run, wait up to S seconds (default 60) for the machine to
                    go quiet (≤ ${QUIET_CORES} busy cores, no other benchmark running); the load seen is reported
  --retries K       run a loop again, up to K times (default 2), when other work took more than
                    ${CONTENDED_FRACTION * 100} % of the machine's CPU during it
  --keep            keep the scratch directory (export files, logs, policies)`;

async function main() {
  const { values } = parseArgs({
    options: {
      measure: { type: 'string', default: '123' },
      opens: { type: 'string', default: '1000000' },
      repeat: { type: 'string', default: '5' },
      modes: { type: 'string', default: 'abcf' },
      rates: { type: 'string', default: '10000,15000,20000,25000,30000,40000,50000,100000,200000,max' },
      'step-seconds': { type: 'string', default: '2' },
      'warmup-seconds': { type: 'string', default: '2' },
      'max-opens': { type: 'string', default: '600000' },
      adds: { type: 'string', default: '20' },
      'add-pause-ms': { type: 'string', default: '1000' },
      'quiet-wait': { type: 'string', default: '60' },
      retries: { type: 'string', default: '2' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const measure = [...new Set(values.measure.split(''))];
  for (const m of measure)
    if (!'123'.includes(m))
      throw new UsageError(`--measure: unknown measurement '${m}'; give digits from 123`);
  const overheadModes = [...new Set(values.modes.split(''))];
  for (const m of overheadModes) {
    if (!(m in OVERHEAD_MODES)) throw new UsageError(`--modes: unknown mode '${m}'; give letters from abcf`);
  }
  if (!overheadModes.includes('a')) throw new UsageError('--modes must include a: every ratio is against it');
  const rates = values.rates.split(',').map((r) => {
    const t = r.trim();
    if (t === 'max') return 'max';
    return positiveInt('--rates', t);
  });
  const { stepSeconds, warmupSeconds, quietWaitS, retries } = pacedLoopFlags(values);
  if (process.getuid?.() !== 0) throw new UsageError('run as root: it loads BPF programs and audit rules');

  const work = mkdtempSync(path.join(os.tmpdir(), 'osprey-bench-policy-'));
  cleanup.add('scratch directory', () => {
    if (values.keep) log(`kept scratch directory ${work}`);
    else rmSync(work, { recursive: true, force: true });
  });
  const ctx = {
    work,
    driver: buildDriver(work),
    opens: positiveInt('--opens', values.opens),
    repeat: positiveInt('--repeat', values.repeat),
    overheadModes,
    rates,
    stepSeconds,
    warmupSeconds,
    maxOpens: positiveInt('--max-opens', values['max-opens']),
    adds: positiveInt('--adds', values.adds),
    addPauseMs: nonNegativeInt('--add-pause-ms', values['add-pause-ms']),
    quietWaitS,
    retries,
    keep: values.keep,
  };
  const others = otherBenchmarks();
  if (others.length)
    log(
      `other benchmarks are running; each measured run waits up to ${quietWaitS} s for them:\n  ${others.join('\n  ')}`,
    );

  const report = {
    benchmark: 'policy',
    date: new Date().toISOString(),
    machine: {
      kernel: os.release(),
      cpus: os.cpus().length,
      cpu_model: os.cpus()[0]?.model ?? 'unknown',
      mem_gb: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      loadavg_at_start: os.loadavg().map((x) => Math.round(x * 100) / 100),
    },
    targets: TARGETS,
    measure: measure.join(''),
  };
  if (measure.includes('1')) report.overhead = await runOverhead(ctx);
  if (measure.includes('2')) report.throughput = await runThroughput(ctx);
  if (measure.includes('3')) report.add_latency = await runAddLatency(ctx);
  report.machine.loadavg_at_end = os.loadavg().map((x) => Math.round(x * 100) / 100);

  saveResults(RESULTS, 'policy', report, renderMarkdown(report), log);
  const failed =
    (report.overhead?.errors?.length ?? 0) +
    (report.throughput?.errors?.length ?? 0) +
    (report.add_latency?.agent?.errors?.length ?? 0) +
    (report.add_latency?.in_process?.error ? 1 : 0);
  return failed ? 1 : 0;
}

// ---------------------------------------------------------------------------
// report

const f = (x, d = 3) => (x === null || x === undefined || Number.isNaN(x) ? '—' : Number(x).toFixed(d));
const pass = (ok) => (ok === null || ok === undefined ? '?' : ok ? 'met' : '**missed**');
const k = (x) => (x === null || x === undefined ? '—' : Math.round(x).toLocaleString('en-US'));

function renderMarkdown(rep) {
  const L = [];
  const m = rep.machine;
  L.push(`### Policy — ${rep.date.slice(0, 10)}`);
  L.push('');
  L.push(
    `${m.cpus} CPUs (${m.cpu_model}), kernel ${m.kernel}, Node ${m.node}; load average at start ${m.loadavg_at_start.join(' / ')}, at end ${m.loadavg_at_end.join(' / ')}.`,
  );
  const bg = [];
  const others = [];
  if (rep.overhead) overheadSection(rep, L, bg, others);
  if (rep.throughput) throughputSection(rep, L, bg, others);
  if (rep.add_latency) addSection(rep, L, bg);
  L.push('');
  L.push('#### Against the targets');
  L.push('');
  L.push('| measure | value | target | |');
  L.push('|---|---|---|---|');
  const b = rep.overhead?.modes?.b;
  if (b && !b.skipped) {
    // the kernel-timed floor decides when wall time or CPU, within their noise, say less
    const floor = rep.overhead.program_floor;
    const floorOver = floor ? floor.pct > rep.targets.overheadPct : false;
    const verdict = (pct) =>
      pct !== null && pct <= rep.targets.overheadPct && floorOver
        ? '**missed** (below the program floor: noise)'
        : pass(pct === null ? null : pct <= rep.targets.overheadPct);
    L.push(
      `| 1. overhead of a non-matching openat policy, wall time | ${f(b.overhead_pct, 1)} % | ≤ ${rep.targets.overheadPct} % | ${verdict(b.overhead_pct)} |`,
    );
    const cpuPct = b.cpu_ratio_vs_a === null ? null : (b.cpu_ratio_vs_a - 1) * 100;
    L.push(
      `| 1. same, CPU (loop + agent) | ${f(cpuPct, 1)} % | ≤ ${rep.targets.overheadPct} % | ${verdict(cpuPct)} |`,
    );
    if (floor)
      L.push(
        `| 1. program floor: Osprey's program beyond an empty one, kernel-timed, over (a)'s open+close (${f(floor.ns_per_open, 0)} ns) | ${f(floor.pct, 1)} % | ≤ ${rep.targets.overheadPct} % | ${pass(!floorOver)} |`,
      );
  }
  const tp = rep.throughput;
  if (tp && !tp.skipped) {
    const best = tp.highest_zero_loss;
    L.push(
      `| 2. highest rate exported with zero loss | ${best ? `${k(best.events_per_s)} events/s` : 'none of the rates'} | ≥ ${k(rep.targets.eventsPerS)} events/s | ${pass(best ? best.events_per_s >= rep.targets.eventsPerS : false)} |`,
    );
    const carried = tp.highest_carried;
    if (carried !== undefined)
      L.push(
        `| 2. same, events/s the loop ran at and the agent exported in full (slowest round, paced at ${carried ? k(Number(carried.rate)) : '—'}) | ${carried ? `${k(carried.events_per_s)} events/s` : 'none of the rates'} | ≥ ${k(rep.targets.eventsPerS)} events/s | ${pass(carried ? carried.events_per_s >= rep.targets.eventsPerS : false)} |`,
      );
  }
  const ag = rep.add_latency?.agent;
  if (ag && !ag.skipped) {
    const cli = ag.stats.cli_add;
    const apiAdd = ag.stats.api_add;
    if (cli)
      L.push(
        `| 3. \`osprey policy add\`, median (spawn to exit) | ${f(cli.median_ms, 1)} ms | < ${rep.targets.addMs} ms | ${pass(cli.median_ms < rep.targets.addMs)} |`,
      );
    if (apiAdd)
      L.push(
        `| 3. the add request alone (POST /v1/policies), median | ${f(apiAdd.median_ms, 1)} ms | < ${rep.targets.addMs} ms | ${pass(apiAdd.median_ms < rep.targets.addMs)} |`,
      );
  }
  L.push('');
  L.push(
    `Background load in the idle second before each measured run: median ${f(median(bg), 2)}, max ${f(bg.length ? Math.max(...bg) : null, 2)} busy cores of ${m.cpus}; ` +
      `${bg.filter((x) => x > QUIET_CORES).length} of ${bg.length} runs started on a machine busier than ${QUIET_CORES} cores.`,
  );
  const uniq = [...new Set(others)];
  if (uniq.length) {
    L.push('');
    L.push('**Other observers or benchmarks were running during some runs (they load every mode):**');
    for (const o of uniq) L.push(`- ${o}`);
  }
  const errs = [
    ...(rep.overhead?.errors ?? []).map((e) => `overhead (${e.mode}) round ${e.round}: ${e.error}`),
    ...(rep.throughput?.errors ?? []).map((e) => `throughput ${e.rate} round ${e.round}: ${e.error}`),
    ...(rep.add_latency?.agent?.errors ?? []).map((e) => `add latency: ${e}`),
    ...(rep.add_latency?.in_process?.error
      ? [`add latency in-process: ${rep.add_latency.in_process.error.split('\n')[0]}`]
      : []),
  ];
  if (errs.length) {
    L.push('');
    L.push('Errors:');
    for (const e of errs) L.push(`- ${e}`);
  }
  L.push('');
  return L.join('\n');
}

function overheadSection(rep, L, bg, others) {
  const o = rep.overhead;
  L.push('');
  L.push(
    `#### 1. A policy that matches nothing — ${k(o.params.opens)} openat+close, median of ${o.params.repeat} interleaved rounds`,
  );
  L.push('');
  L.push(
    '| mode | wall s (median) | all runs | ratio vs (a) | per-round ratios | ns per open+close | loop CPU s | observer CPU s | CPU ratio vs (a) |',
  );
  L.push('|---|---|---|---|---|---|---|---|---|');
  for (const [mode, e] of Object.entries(o.modes)) {
    if (e.skipped) {
      L.push(`| (${mode}) ${e.name} | skipped: ${e.skipped} | | | | | | | |`);
      continue;
    }
    bg.push(...e.background_busy_cores_all);
    others.push(...e.other_observers, ...e.other_benchmarks);
    L.push(
      `| (${mode}) ${e.name} | ${f(e.wall_s_median)} | ${e.wall_s_all.map((x) => f(x)).join(' / ')} | ${f(e.ratio_vs_a)} | ` +
        `${e.paired_ratios.map((x) => f(x, 2)).join(' / ')} | ${f(e.ns_per_open_close_median, 0)} | ${f(e.loop_cpu_s_median, 2)} | ` +
        `${f(e.observer_cpu_s_median, 2)} | ${f(e.cpu_ratio_vs_a)} |`,
    );
  }
  const b = o.modes.b;
  if (b && !b.skipped) {
    L.push('');
    L.push(
      `The agent ran without BPF run-time statistics (its default); after each measured loop, a loop a tenth as long with them on (sysctl kernel.bpf_stats_enabled) ran Osprey's program ${b.bpf_runs_all.join(' / ')} times (every openat on the machine) at a median ${f(b.bpf_ns_per_run_median, 0)} ns per run; ` +
        `events posted: ${b.events_posted_all.join(' / ')}.`,
    );
  }
  const fl = o.modes.f;
  if (fl && !fl.skipped && b && !b.skipped) {
    L.push('');
    L.push(
      `The floor (f) is what a program that does nothing costs on the tracepoint (b) hooks: ${f(fl.ns_per_open_close_median - o.modes.a.ns_per_open_close_median, 0)} ns per open+close (${f(fl.overhead_pct, 1)} %) before any work; ` +
        `Osprey's policy costs ${f(b.ns_per_open_close_median - fl.ns_per_open_close_median, 0)} ns more (wall-time medians).`,
    );
    if (o.program_floor)
      L.push(
        '',
        `Timed by the kernel instead (statistics on for both, in loops a tenth as long): the empty program ${f(fl.bpf_ns_per_run_median, 0)} ns a run, Osprey's ${f(b.bpf_ns_per_run_median, 0)}; ` +
          `the ${f(o.program_floor.ns_per_open, 0)} ns between them are work (b) adds to every open+close whatever the wall time says: ` +
          `${f(o.program_floor.pct, 1)} % of (a)'s ${f(o.modes.a.ns_per_open_close_median, 0)} ns, a floor of (b)'s overhead that the machine's noise does not move.`,
      );
  }
  const c = o.modes.c;
  if (c && !c.skipped) {
    L.push('');
    L.push(
      `auditd rule: \`${(c.audit_rules ?? []).join('; ')}\`; records with its key: ${c.audit_records_all.join(' / ')}; kernel audit lost: ${c.kernel_audit_lost_all.join(' / ')}.`,
    );
  }
  const all = Object.values(o.modes).flatMap((e) => e.others_cpu_fraction_all ?? []);
  L.push('');
  L.push(
    `Others' share of the machine's CPU during the loops kept: median ${f(median(all) * 100, 0)} %, max ${f(all.length ? Math.max(...all) * 100 : null, 0)} %; ` +
      `${o.discarded_contended_runs.length} contended loop(s) (> ${CONTENDED_FRACTION * 100} %) were run again and left out.`,
  );
}

function throughputSection(rep, L, bg, others) {
  const t = rep.throughput;
  L.push('');
  if (t.skipped) {
    L.push(`#### 2. Matched-event throughput — skipped: ${t.skipped}`);
    return;
  }
  L.push(
    `#### 2. Matched-event throughput — openat policy matching every open of the loop, export to a file; ${t.params.repeat} round(s), paced steps of ${t.params.step_seconds} s, flat out ${k(t.params.max_opens)} opens`,
  );
  L.push('');
  L.push(
    `Baseline, the loop flat out with no agent: ${k(t.baseline.opens_per_s_median)} opens/s (median; ${t.baseline.opens_per_s_all.map(k).join(' / ')}).`,
  );
  bg.push(...t.baseline.background_busy_cores_all);
  L.push('');
  L.push(
    '| target rate | opens/s reached (median) | all rounds | events lost per round | loss % | ring drops | bus drops | drain s | agent CPU µs per event taken | BPF ns/run | agent peak RSS MB |',
  );
  L.push('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const [rate, e] of Object.entries(t.rates)) {
    bg.push(...e.background_busy_cores_all);
    L.push(
      `| ${rate === 'max' ? 'flat out' : k(Number(rate))} | ${k(e.opens_per_s_median)} | ${e.opens_per_s_all.map(k).join(' / ')} | ` +
        `${e.events_lost_all.join(' / ')} | ${e.loss_pct_all.map((x) => f(x, 2)).join(' / ')} | ${e.kernel_ringbuf_drops_all.join(' / ')} | ` +
        `${e.bus_queue_overflow_all.join(' / ')} | ${f(e.drain_s_median, 2)} | ${f(e.agent_cpu_us_per_event_median, 1)} | ${e.bpf_ns_per_run_median ?? '—'} | ${f(e.agent_peak_rss_mb_max, 0)} |`,
    );
  }
  L.push('');
  const best = t.highest_zero_loss;
  L.push(
    best
      ? `Highest rate exported with zero loss in every round: **${k(best.events_per_s)} events/s** (${best.rate === 'max' ? 'flat out' : 'paced'}).`
      : '**No rate was exported with zero loss in every round.**',
  );
  if (t.loss_above.length) {
    L.push(
      `Above it: ${t.loss_above.map((a) => `${a.rate === 'max' ? 'flat out' : k(Number(a.rate))} (reached ${k(a.opens_per_s_median)}/s) lost ${a.events_lost_all.join(' / ')} (${a.loss_pct_all.map((x) => f(x, 1)).join(' / ')} %)`).join('; ')}.`,
    );
  }
  const any = Object.values(t.rates)[0];
  if (any) L.push(`Each event is ${k(any.export_bytes_per_event)} bytes of JSON.`);
  const all = Object.values(t.rates).flatMap((e) => e.others_cpu_fraction_all ?? []);
  L.push('');
  L.push(
    `Others' share of the machine's CPU during the steps kept: median ${f(median(all) * 100, 0)} %, max ${f(all.length ? Math.max(...all) * 100 : null, 0)} % ` +
      `(the agent's CPU is counted as the observer's); ${t.discarded_contended_runs.length} contended step(s) were run again and left out.`,
  );
  others.push(...t.steps.flatMap((s) => [...(s.other_observers ?? []), ...(s.other_benchmarks ?? [])]));
}

function addSection(rep, L, bg) {
  const a = rep.add_latency;
  L.push('');
  L.push(
    `#### 3. \`osprey policy add\` of a typical policy (3 syscall hooks, 4 selectors) — ${a.params.adds} adds+deletes after ${a.params.warmup} warm-up ones, ${a.params.pause_ms ?? 0} ms pause before each add`,
  );
  L.push('');
  L.push('| what | median ms | p90 ms | min ms | max ms |');
  L.push('|---|---|---|---|---|');
  const row = (name, s) => {
    if (s)
      L.push(
        `| ${name} | ${f(s.median_ms, 1)} | ${f(s.p90_ms, 1)} | ${f(s.min_ms, 1)} | ${f(s.max_ms, 1)} |`,
      );
  };
  const ag = a.agent;
  if (ag?.skipped) L.push(`| through the agent | skipped: ${ag.skipped} | | | |`);
  else if (ag) {
    bg.push(ag.background_busy_cores);
    row('`osprey policy add FILE` (spawn to exit)', ag.stats.cli_add);
    row('`osprey policy delete NAME`', ag.stats.cli_delete);
    row('baseline: `osprey policy list -o json`', ag.stats.cli_list);
    row('baseline: `osprey version` (Node start-up, no request)', ag.stats.cli_version);
    row('POST /v1/policies (the add request alone)', ag.stats.api_add);
    row('DELETE /v1/policies/NAME', ag.stats.api_delete);
    row('baseline: GET /v1/health', ag.stats.api_health);
    row("agent's own load_ms (parse + compile + load + attach)", ag.stats.agent_load_ms);
  }
  const ip = a.in_process;
  if (ip?.error) L.push(`| in-process | failed: ${ip.error.split('\n')[0]} | | | |`);
  else if (ip) {
    bg.push(ip.background_busy_cores);
    row('in-process: parse + validate', ip.stats.parse);
    row('in-process: compile', ip.stats.compile);
    row('in-process: PolicyProgram.load (kernel load, maps, attach)', ip.stats.load);
    row('in-process: of which the object load + verifier alone', ip.stats.object_load);
    row('in-process: close (detach, free)', ip.stats.close);
    row('in-process: parse → attached, total', ip.stats.total);
  }
  if (ag && !ag.skipped) {
    L.push('');
    L.push(
      `Every add was checked to be in force when it returned (an open of the trigger file right after was posted); ` +
        `programs of the policy left in the agent after the last delete: ${ag.programs_left_after_deletes}. ` +
        `Warm-up adds (not in the table): CLI ${ag.warmup_ms.cli_add.map((x) => f(x, 0)).join(' / ') || '—'} ms, API ${ag.warmup_ms.api_add.map((x) => f(x, 0)).join(' / ') || '—'} ms.`,
    );
  }
}

// ---------------------------------------------------------------------------
// entry: cleanup on every way out

runBenchmark({
  name: 'bench/policy',
  main,
  cleanup,
  log,
  usage: USAGE,
  isUsage: (err) => err instanceof UsageError,
});

// The service benchmark: the agent's event path with every sink a service
// runs — the SQLite event store, the JSON-lines file exporter and two API
// clients streaming every event — against the file exporter alone, in the
// same run. The workload is the policy engine's matched events: an openat
// loop on a file under a TracingPolicy's Prefix, paced at rising rates and
// flat out, a fresh agent for each step; every sink's events are counted
// against what the loop did. See bench/README.md (Agent as a service).
// Run it through bench/service/run.sh.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { median, runBenchmark, saveResults, sleep } from '../lib/proc.mjs';
import {
  agentUnavailable,
  buildDriver,
  CONTENDED_FRACTION,
  cleanup,
  measuredLoop,
  otherBenchmarks,
  pacedLoopFlags,
  positiveInt,
  prefixSafePath,
  QUIET_CORES,
  REPO,
  round3,
  UsageError,
} from '../policy/common.mjs';
import { openatPrefixPolicy } from '../policy/policies.mjs';
import { driverInScope, makeScope, startOpener } from './scope.mjs';
import { CONFIGS, REACHED, step } from './step.mjs';

const RESULTS = path.join(REPO, 'bench/results');
const POLICY = 'osprey-bench-service';
const TARGET_RATIO = 0.8;
const log = (msg) => console.error(`[bench/service] ${msg}`);

const DEFAULT_RATES = '5000,7500,10000,12500,15000,17500,20000,25000,30000,40000,50000,60000,max';
const USAGE = `usage: bench/service/run.sh [--repeat R] [--rates LIST] [--step-seconds S] [--warmup-seconds W] [--max-opens N]
                           [--clients N] [--configs AB] [--quiet-wait S] [--retries K] [--keep]
       bench/service/run.sh --report FILE

Matched-event throughput of the agent with (B) the event store, the file exporter and
N API clients (osprey events) all on, against (A) the file exporter alone; target B/A >= ${TARGET_RATIO}.

  --repeat R        rounds; each runs every rate in both configurations, interleaved (default 3)
  --rates LIST      paced rates in opens/s, "max" = flat out (default ${DEFAULT_RATES})
  --step-seconds S  seconds each paced step runs (default 5)
  --warmup-seconds W  seconds of the same load before each step's measured loop, on
                    another file, not counted (default 2; 0 measures a cold agent)
  --max-opens N     opens of the flat-out step and of the no-agent baseline (default 300000)
  --clients N       API clients in configurations B and D (default 2)
  --configs LIST    agent configurations, letters of ABCD (default AB; A is required):
                    A file exporter alone, B store + file + API clients (the target),
                    C store + file, D file + API clients (C and D split B's cost)
  --quiet-wait S    before each step, wait up to S seconds (default 60) for the machine to go
                    quiet (<= ${QUIET_CORES} busy cores, no other benchmark running); the load seen is reported
  --retries K       run a step again, up to K times (default 2), when other work took more than
                    ${CONTENDED_FRACTION * 100} % of the machine's CPU during its loop
  --keep            keep the scratch directory (export files, stores, logs)
  --report FILE     measure nothing: summarize the steps of a results JSON again (rewrites FILE
                    and the .md beside it), e.g. after a change to the summary
  -h, --help        this text`;

async function main() {
  const { values } = parseArgs({
    options: {
      repeat: { type: 'string', default: '3' },
      rates: { type: 'string', default: DEFAULT_RATES },
      'step-seconds': { type: 'string', default: '5' },
      'warmup-seconds': { type: 'string', default: '2' },
      'max-opens': { type: 'string', default: '300000' },
      clients: { type: 'string', default: '2' },
      configs: { type: 'string', default: 'AB' },
      'quiet-wait': { type: 'string', default: '60' },
      retries: { type: 'string', default: '2' },
      keep: { type: 'boolean', default: false },
      report: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.report) return reReport(values.report);
  const rates = [
    ...new Set(
      values.rates.split(',').map((r) => {
        const t = r.trim();
        return t === 'max' ? 'max' : positiveInt('--rates', t);
      }),
    ),
  ];
  const configs = [...new Set(values.configs.toUpperCase().split(''))];
  for (const c of configs)
    if (!(c in CONFIGS))
      throw new UsageError(`--configs: unknown configuration '${c}'; give letters of ABCD`);
  if (!configs.includes('A')) throw new UsageError('--configs must include A: every ratio is against it');
  configs.sort();
  const { stepSeconds, warmupSeconds, quietWaitS, retries } = pacedLoopFlags(values);
  if (process.getuid?.() !== 0) throw new UsageError('run as root: it loads BPF programs');
  const why = await agentUnavailable();
  if (why) throw new Error(why);

  const work = mkdtempSync(path.join(os.tmpdir(), 'osprey-bench-service-'));
  cleanup.add('scratch directory', () => {
    if (values.keep) log(`kept scratch directory ${work}`);
    else rmSync(work, { recursive: true, force: true });
  });
  const cgroup = makeScope();
  const ctx = {
    work,
    cgroup,
    opener: await startOpener(cgroup),
    driver: driverInScope(work, buildDriver(work), cgroup),
    repeat: positiveInt('--repeat', values.repeat),
    rates,
    stepSeconds,
    warmupSeconds,
    maxOpens: positiveInt('--max-opens', values['max-opens']),
    clients: positiveInt('--clients', values.clients),
    configs,
    quietWaitS,
    retries,
    keep: values.keep,
  };
  const hot = path.join(work, 'hot');
  mkdirSync(hot);
  const setup = {
    policy: POLICY,
    loopFile: prefixSafePath(hot, 'target'),
    readyMarker: prefixSafePath(hot, 'ready-marker'),
    warmupFile: prefixSafePath(hot, 'warmup'),
    warmedMarker: prefixSafePath(hot, 'warmed-marker'),
    doneMarker: prefixSafePath(hot, 'done-marker'),
    policyFile: path.join(work, 'hot.yaml'),
  };
  for (const f of [setup.loopFile, setup.readyMarker, setup.doneMarker, setup.warmupFile, setup.warmedMarker])
    writeFileSync(f, 'osprey bench\n');
  writeFileSync(setup.policyFile, openatPrefixPolicy(POLICY, `${hot}/`));
  const others = otherBenchmarks();
  if (others.length)
    log(
      `other benchmarks are running; each step waits up to ${quietWaitS} s for them:\n  ${others.join('\n  ')}`,
    );
  log(
    `rates ${rates.join(', ')} × ${stepSeconds} s, flat out ${ctx.maxOpens} opens, ${ctx.repeat} round(s), ` +
      `configurations ${configs.join(', ')} (${ctx.clients} API clients), interleaved`,
  );

  const steps = [];
  const discarded = [];
  const t0 = Date.now();
  for (let round = 1; round <= ctx.repeat; round++) {
    // the loop alone, flat out: how fast the workload can go with no agent
    for (let attempt = 0; ; attempt++) {
      log(
        `round ${round}/${ctx.repeat}: baseline loop, no agent${attempt ? ` — attempt ${attempt + 1}` : ''}`,
      );
      let r;
      try {
        r = {
          round,
          config: 'none',
          rate: 'baseline',
          ...(await measuredLoop(ctx, [], ctx.maxOpens, setup.loopFile)),
        };
      } catch (err) {
        r = { round, config: 'none', rate: 'baseline', error: err.message };
      }
      log(`  ${r.error ? `failed: ${r.error}` : `${Math.round(r.loop.opens_per_s)} opens/s`}`);
      if (r.contended && attempt < ctx.retries) {
        discarded.push(r);
        continue;
      }
      steps.push(r);
      break;
    }
    for (const rate of rates) {
      // A first in odd rounds, last in even ones
      const order = round % 2 ? configs : [...configs].reverse();
      for (const config of order) {
        for (let attempt = 0; ; attempt++) {
          log(
            `round ${round}/${ctx.repeat}: (${config}) ${rate === 'max' ? 'flat out' : `${rate}/s`}${attempt ? ` — attempt ${attempt + 1}` : ''}`,
          );
          let r;
          try {
            r = { round, rate, ...(await step(ctx, setup, { config, round, rate })) };
          } catch (err) {
            r = { round, rate, config, error: err.message };
          }
          log(`  ${r.error ? `failed: ${r.error}` : r.note}`);
          await sleep(500);
          if (r.contended && attempt < ctx.retries) {
            log(
              `  others used ${(r.others_cpu_fraction * 100).toFixed(0)} % of the machine during the loop; again`,
            );
            discarded.push(r);
            continue;
          }
          steps.push(r);
          break;
        }
      }
    }
  }
  const report = {
    benchmark: 'service',
    date: new Date().toISOString(),
    duration_s: Math.round((Date.now() - t0) / 1000),
    machine: {
      kernel: os.release(),
      cpus: os.cpus().length,
      cpu_model: os.cpus()[0]?.model ?? 'unknown',
      mem_gb: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
    },
    target_ratio: TARGET_RATIO,
    params: {
      rates,
      step_seconds: stepSeconds,
      warmup_seconds: warmupSeconds,
      max_opens: ctx.maxOpens,
      repeat: ctx.repeat,
      clients: ctx.clients,
      configs_run: configs,
      loop_file: setup.loopFile,
      agent_cgroup: cgroup,
      configs: Object.fromEntries(
        configs.map((k) => [
          k,
          {
            name: CONFIGS[k].name,
            extra_agent_args:
              typeof CONFIGS[k].args === 'function' ? CONFIGS[k].args('STEP_DIR') : CONFIGS[k].args,
          },
        ]),
      ),
    },
    ...summarize(ctx, steps),
    errors: steps
      .filter((s) => s.error)
      .map((s) => ({ round: s.round, config: s.config, rate: s.rate, error: s.error })),
    steps,
    discarded_contended_runs: discarded,
  };
  saveResults(RESULTS, 'service', report, renderMarkdown(report), log);
  return report.errors.length ? 1 : 0;
}

/** --report: the summary and the markdown made again from a results file's steps. */
function reReport(file) {
  const old = JSON.parse(readFileSync(file, 'utf8'));
  if (old.benchmark !== 'service') throw new UsageError(`${file} is not a bench/service result`);
  const p = old.params;
  const ctx = { rates: p.rates, configs: p.configs_run ?? Object.keys(p.configs) };
  const { baseline, configs, comparisons, comparison, builds, ...rest } = old;
  const report = { ...rest, ...summarize(ctx, old.steps) };
  // the same key order as a fresh run's
  const ordered = {};
  for (const k of [
    'benchmark',
    'date',
    'duration_s',
    'machine',
    'target_ratio',
    'params',
    'baseline',
    'configs',
    'comparisons',
    'builds',
  ])
    ordered[k] = report[k];
  Object.assign(ordered, report);
  const md = renderMarkdown(ordered);
  writeFileSync(file, `${JSON.stringify(ordered, null, 2)}\n`);
  writeFileSync(file.replace(/\.json$/, '.md'), md);
  console.log(md);
  log(`rewrote ${file} and its .md`);
  return 0;
}

// ---------------------------------------------------------------------------
// summary

const num = (xs) => xs.filter((v) => typeof v === 'number' && Number.isFinite(v));
const med = (xs) => {
  const v = num(xs);
  return v.length ? round3(median(v)) : null;
};

function summarize(ctx, steps) {
  const ok = steps.filter((s) => !s.error);
  const base = ok.filter((s) => s.rate === 'baseline');
  const baseline = {
    opens_per_s_median: med(base.map((s) => s.loop.opens_per_s)),
    opens_per_s_all: base.map((s) => Math.round(s.loop.opens_per_s)),
    background_busy_cores_all: base.map((s) => s.background_busy_cores),
    others_cpu_fraction_all: base.map((s) => s.others_cpu_fraction),
  };
  const configs = {};
  for (const config of ctx.configs) {
    const rates = {};
    for (const rate of ctx.rates) {
      const rs = ok.filter((s) => s.config === config && s.rate === rate);
      if (rs.length === 0) continue;
      const sinkNames = Object.keys(rs[0].sinks);
      rates[rate] = {
        rounds: rs.length,
        opens: rs[0].opens,
        opens_per_s_median: med(rs.map((s) => s.opens_per_s)),
        opens_per_s_all: rs.map((s) => Math.round(s.opens_per_s)),
        reached_target_all: rs.map((s) => s.reached_target),
        sinks: Object.fromEntries(
          sinkNames.map((k) => [
            k,
            {
              lost_all: rs.map((s) => s.sinks[k]?.lost ?? null),
              events_per_s_median: med(rs.map((s) => s.sinks[k]?.events_per_s)),
              events_per_s_all: rs.map((s) => s.sinks[k]?.events_per_s ?? null),
              drain_s_median: med(rs.map((s) => s.sinks[k]?.drain_s)),
            },
          ]),
        ),
        zero_loss: rs.every((s) => s.zero_loss),
        file_zero_loss: rs.every((s) => s.file_lost === 0),
        // every sink's delivered rate at its slowest, per round
        min_sink_events_per_s_all: rs.map((s) => minSinkRate(s)),
        min_sink_events_per_s_median: med(rs.map((s) => minSinkRate(s))),
        kernel_ringbuf_drops_all: rs.map((s) => s.kernel_ringbuf_drops),
        bus_queue_overflow_all: rs.map((s) => s.agent_drops?.bus_queue_overflow ?? null),
        store_skipped_all: rs.map((s) => s.store_skipped),
        store_bus_dropped_all: rs.map((s) => s.store_bus_dropped),
        store_failed_all: rs.map((s) => s.store_failed),
        store_deleted_by_retention_all: rs.map((s) => s.store_deleted_by_retention),
        api_dropped_all: rs.map((s) => s.agent_drops?.api_slow_client_dropped ?? null),
        api_disconnected_all: rs.map((s) => s.agent_drops?.api_clients_disconnected ?? null),
        drain_s_median: med(rs.map((s) => s.drain_s)),
        agent_cpu_s_median: med(rs.map((s) => s.agent_cpu_s)),
        agent_main_thread_cpu_s_median: med(rs.map((s) => s.agent_main_thread_cpu_s)),
        agent_cpu_us_per_event_median: med(rs.map((s) => s.agent_cpu_us_per_event)),
        clients_cpu_s_median: med(rs.map((s) => s.clients_cpu_s)),
        counter_cpu_s_median: med(rs.map((s) => s.counter_cpu_s)),
        loop_cpu_s_median: med(rs.map((s) => s.loop_cpu_s)),
        agent_peak_rss_mb_max: num(rs.map((s) => s.agent_peak_rss_mb)).length
          ? Math.max(...num(rs.map((s) => s.agent_peak_rss_mb)))
          : null,
        stop_s_median: med(rs.map((s) => s.stop_s)),
        export_bytes_per_event: rs[0].export_bytes_per_event,
        background_busy_cores_all: rs.map((s) => s.background_busy_cores),
        others_cpu_fraction_all: rs.map((s) => s.others_cpu_fraction),
      };
    }
    configs[config] = {
      name: CONFIGS[config].name,
      rates,
      highest_zero_loss: highestZeroLoss(ctx, rates, 'zero_loss'),
      highest_zero_loss_anywhere: highestZeroLoss(ctx, rates, 'zero_loss', false),
      highest_file_zero_loss: highestZeroLoss(ctx, rates, 'file_zero_loss'),
      highest_carried: highestCarried(ctx, rates),
    };
  }
  // each configuration against (A); the target is (B)'s
  const comparisons = {};
  for (const config of Object.keys(configs)) {
    if (config !== 'A') comparisons[config] = compare(ctx, ok, configs, config);
  }
  // the builds the agents ran: more than one means someone rebuilt during the run
  const builds = {};
  for (const s of steps) {
    for (const b of [s.build, s.build_changed_during_step].filter(Boolean)) {
      builds[b.id] ??= { ...b, steps: 0 };
      if (b === s.build) builds[b.id].steps++;
    }
  }
  return { baseline, configs, comparisons, builds };
}

const ratio = (b, a) => (a && b !== null && b !== undefined ? round3(b / a) : null);

/** Configuration X against (A): its zero-loss rate, its flat-out delivery, the agent's CPU per event. */
function compare(ctx, ok, configs, X) {
  const A = configs.A;
  const B = configs[X];
  const zlA = A.highest_zero_loss?.events_per_s ?? null;
  const zlB = B.highest_zero_loss?.events_per_s ?? null;
  const flat = {};
  if (A.rates.max && B.rates.max) {
    const a = A.rates.max;
    const b = B.rates.max;
    const byRound = (config) =>
      Object.fromEntries(ok.filter((s) => s.config === config && s.rate === 'max').map((s) => [s.round, s]));
    const ra = byRound('A');
    const rb = byRound(X);
    const rounds = Object.keys(ra).filter((r) => rb[r]);
    flat.A_file_events_per_s = a.sinks.file.events_per_s_median;
    flat.file_events_per_s = b.sinks.file.events_per_s_median;
    flat.min_sink_events_per_s = b.min_sink_events_per_s_median;
    flat.sinks_events_per_s = Object.fromEntries(
      Object.entries(b.sinks).map(([k, v]) => [k, v.events_per_s_median]),
    );
    flat.ratio_file = ratio(flat.file_events_per_s, flat.A_file_events_per_s);
    flat.ratio_every_sink = ratio(flat.min_sink_events_per_s, flat.A_file_events_per_s);
    flat.per_round_ratio_every_sink = rounds.map((r) =>
      ratio(minSinkRate(rb[r]), ra[r].sinks.file.events_per_s),
    );
    flat.per_round_ratio_file = rounds.map((r) =>
      ratio(rb[r].sinks.file.events_per_s, ra[r].sinks.file.events_per_s),
    );
  }
  // agent CPU per event at the highest rate both configurations ran without loss
  let cpuAt = null;
  for (const rate of ctx.rates) {
    if (rate === 'max') continue;
    if (A.rates[rate]?.zero_loss && B.rates[rate]?.zero_loss) cpuAt = rate;
  }
  const carriedA = A.highest_carried?.events_per_s ?? null;
  const carriedX = B.highest_carried?.events_per_s ?? null;
  const c = {
    carried: {
      A: carriedA,
      X: carriedX,
      A_rate: A.highest_carried?.rate ?? null,
      X_rate: B.highest_carried?.rate ?? null,
      ratio: ratio(carriedX, carriedA),
    },
    zero_loss_rate: {
      A: zlA,
      X: zlB,
      X_file_only: B.highest_file_zero_loss?.events_per_s ?? null,
      ratio: ratio(zlB, zlA),
    },
    flat_out: flat,
    cpu_at_common_rate:
      cpuAt === null
        ? null
        : {
            rate: cpuAt,
            A_agent_cpu_us_per_event: A.rates[cpuAt].agent_cpu_us_per_event_median,
            X_agent_cpu_us_per_event: B.rates[cpuAt].agent_cpu_us_per_event_median,
            A_agent_cpu_s: A.rates[cpuAt].agent_cpu_s_median,
            X_agent_cpu_s: B.rates[cpuAt].agent_cpu_s_median,
            X_clients_cpu_s: B.rates[cpuAt].clients_cpu_s_median,
          },
  };
  c.target_met = {
    carried: c.carried.ratio === null ? null : c.carried.ratio >= TARGET_RATIO,
    zero_loss_rate: c.zero_loss_rate.ratio === null ? null : c.zero_loss_rate.ratio >= TARGET_RATIO,
    flat_out_every_sink: flat.ratio_every_sink == null ? null : flat.ratio_every_sink >= TARGET_RATIO,
  };
  return c;
}

function minSinkRate(s) {
  const v = Object.values(s.sinks).map((k) => (k.events_per_s === null ? 0 : k.events_per_s));
  return v.length ? Math.min(...v) : null;
}

/** The highest rate every round delivered in full (the loop having reached it); flat out counts at the rate it ran. */
/**
 * The highest rate delivered in full in every round, the loop having reached
 * it (flat out counts at the rate it ran). `unbroken`: every lower rate too —
 * a rate that lost events caps the figure even if a higher one happened not to.
 */
function highestZeroLoss(ctx, rates, key, unbroken = true) {
  const order = [
    ...ctx.rates.filter((r) => r !== 'max').sort((a, b) => a - b),
    ...ctx.rates.filter((r) => r === 'max'),
  ];
  let best = null;
  for (const rate of order) {
    const e = rates[rate];
    if (!e?.[key] || !e.reached_target_all.every(Boolean)) {
      if (unbroken) break;
      continue;
    }
    const achieved = rate === 'max' ? e.opens_per_s_median : rate;
    if (best === null || achieved > best.events_per_s) best = { rate, events_per_s: achieved };
  }
  return best;
}

/**
 * The event path's throughput: the highest rate the loop actually ran at in
 * a paced step where every sink got every event, in every round (the
 * slowest round's rate), every lower rate lossless too. Unlike
 * highestZeroLoss it counts a step whose loop fell short of its target: the
 * agent's CPU slowed the loop on the shared cores, but every event the loop
 * made was carried.
 */
function highestCarried(ctx, rates) {
  const order = ctx.rates.filter((r) => r !== 'max').sort((a, b) => a - b);
  let best = null;
  for (const rate of order) {
    const e = rates[rate];
    if (!e?.zero_loss) break;
    const carried = Math.min(...e.opens_per_s_all);
    if (best === null || carried > best.events_per_s) best = { rate, events_per_s: carried };
  }
  return best;
}

// ---------------------------------------------------------------------------
// report

const f = (x, d = 3) => (x === null || x === undefined || Number.isNaN(x) ? '—' : Number(x).toFixed(d));
const k = (x) => (x === null || x === undefined ? '—' : Math.round(x).toLocaleString('en-US'));
const pass = (ok) => (ok === null || ok === undefined ? '?' : ok ? 'met' : '**missed**');
const all = (xs) => xs.map((x) => (x === null || x === undefined ? '—' : String(x))).join(' / ');
const rateName = (r) => (r === 'max' ? 'flat out' : k(Number(r)));

function renderMarkdown(rep) {
  const L = [];
  const m = rep.machine;
  const p = rep.params;
  L.push(`### Agent as a service — ${rep.date.slice(0, 10)}`);
  L.push('');
  L.push(
    `${m.cpus} CPUs (${m.cpu_model}), kernel ${m.kernel}, Node ${m.node}; ${p.repeat} interleaved round(s), ` +
      `paced steps of ${p.step_seconds} s, flat out ${k(p.max_opens)} opens; ${Math.round(rep.duration_s / 60)} min.`,
  );
  L.push('');
  for (const [key, c] of Object.entries(p.configs)) {
    const clients = key === 'B' || key === 'D' ? ` (${p.clients} × \`osprey events -o json\`)` : '';
    L.push(`- (${key}) ${c.name}${clients}`);
  }
  L.push('');
  L.push(
    `The loop alone, flat out, no agent: ${k(rep.baseline.opens_per_s_median)} opens/s (median; ${rep.baseline.opens_per_s_all.map(k).join(' / ')}).`,
  );
  L.push('');
  L.push(
    '| rate | cfg | opens/s reached | lost: file | lost: store | lost: API clients | ring drops | export queue drops | store skipped | API drops / cut off | drain s | agent CPU s (main thread) | agent µs/event | clients CPU s | agent peak RSS MB |',
  );
  L.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const rate of p.rates) {
    for (const config of Object.keys(rep.configs)) {
      const e = rep.configs[config].rates[rate];
      if (!e) continue;
      const clientNames = Object.keys(e.sinks).filter((n) => n.startsWith('client-'));
      const clientsLost = e.opens_per_s_all.map((_, i) =>
        clientNames.map((n) => e.sinks[n].lost_all[i] ?? '—').join('+'),
      );
      L.push(
        `| ${rateName(rate)} | ${config} | ${k(e.opens_per_s_median)} | ${all(e.sinks.file.lost_all)} | ` +
          `${e.sinks.store ? all(e.sinks.store.lost_all) : '—'} | ${clientNames.length ? clientsLost.join(' / ') : '—'} | ` +
          `${all(e.kernel_ringbuf_drops_all)} | ${all(e.bus_queue_overflow_all)} | ` +
          `${e.sinks.store ? all(e.store_skipped_all.map((s, i) => s + (e.store_bus_dropped_all[i] ?? 0))) : '—'} | ` +
          `${clientNames.length ? e.api_dropped_all.map((d, i) => `${d}/${e.api_disconnected_all[i]}`).join(' / ') : '—'} | ` +
          `${f(e.drain_s_median, 2)} | ${f(e.agent_cpu_s_median, 2)} (${f(e.agent_main_thread_cpu_s_median, 2)}) | ${f(e.agent_cpu_us_per_event_median, 1)} | ` +
          `${clientNames.length ? f(e.clients_cpu_s_median, 2) : '—'} | ${f(e.agent_peak_rss_mb_max, 0)} |`,
      );
    }
  }
  L.push('');
  L.push(
    `Per round: lost = events the loop caused that the sink does not have (${rep.configs.A.rates[p.rates[0]]?.export_bytes_per_event ?? '—'} bytes of JSON each); ` +
      'ring drops are lost to every sink; store skipped = events the store or its bus queue had no room for. ' +
      'Medians: drain = from the end of the loop until the last sink had everything; CPU over the idle second, loop and drain.',
  );
  const cmp = rep.comparisons;
  const withFlat = Object.entries(cmp).filter(([, c]) => c.flat_out.A_file_events_per_s !== undefined);
  if (withFlat.length) {
    L.push('');
    L.push('Flat out, events each sink received per second of loop + its drain (median):');
    L.push('');
    L.push('| cfg | sink | events/s | vs (A) file | per-round vs (A) |');
    L.push('|---|---|---|---|---|');
    L.push(`| A | export file | ${k(withFlat[0][1].flat_out.A_file_events_per_s)} | 1.000 | |`);
    for (const [X, c] of withFlat) {
      const fl = c.flat_out;
      for (const [name, v] of Object.entries(fl.sinks_events_per_s)) {
        const per = name === 'file' ? all(fl.per_round_ratio_file.map((x) => f(x, 2))) : '';
        L.push(
          `| ${X} | ${name === 'file' ? 'export file' : name} | ${k(v)} | ${f(ratio(v, fl.A_file_events_per_s))} | ${per} |`,
        );
      }
      L.push(
        `| ${X} | **every sink (the slowest)** | ${k(fl.min_sink_events_per_s)} | ${f(fl.ratio_every_sink)} | ${all(fl.per_round_ratio_every_sink.map((x) => f(x, 2)))} |`,
      );
    }
  }
  L.push('');
  L.push('#### Against the target');
  L.push('');
  L.push('| measure | cfg | (A) file alone | this cfg | ratio vs (A) | target | |');
  L.push('|---|---|---|---|---|---|---|');
  for (const [X, c] of Object.entries(cmp)) {
    const z = c.zero_loss_rate;
    const fl = c.flat_out;
    const verdict = (ok) => (X === 'B' ? pass(ok) : '(no target)');
    const cr = c.carried;
    L.push(
      `| events/s carried with zero loss in every sink, every round (the loop's rate, its slowest round; every lower rate lossless too) | ${X} | ${k(cr.A)} (paced at ${k(cr.A_rate)}) | ${k(cr.X)} (paced at ${k(cr.X_rate)}) | ${f(cr.ratio)} | ≥ ${rep.target_ratio} | ${verdict(c.target_met.carried)} |`,
    );
    L.push(
      `| highest paced rate with zero loss in every sink, every round | ${X} | ${k(z.A)} events/s | ${k(z.X)} events/s (export file alone: ${k(z.X_file_only)}) | ${f(z.ratio)} | ≥ ${rep.target_ratio} | ${verdict(c.target_met.zero_loss_rate)} |`,
    );
    if (fl.A_file_events_per_s !== undefined)
      L.push(
        `| flat out, events/s every sink received | ${X} | ${k(fl.A_file_events_per_s)} | ${k(fl.min_sink_events_per_s)} | ${f(fl.ratio_every_sink)} | ≥ ${rep.target_ratio} | ${verdict(c.target_met.flat_out_every_sink)} |`,
      );
  }
  const topPaced = Math.max(...(p.rates ?? []).filter((r) => r !== 'max').map(Number));
  for (const [X, c] of Object.entries(cmp)) {
    if (c.carried.A_rate !== null && Number(c.carried.A_rate) === topPaced) {
      L.push('');
      L.push(
        `(A) carried the grid's highest paced rate without loss: its limit is higher than this grid shows, and (${X})'s ratio is an upper bound.`,
      );
    }
  }
  for (const [X, c] of Object.entries(cmp)) {
    if (!c.cpu_at_common_rate) continue;
    const x = c.cpu_at_common_rate;
    L.push('');
    L.push(
      `(${X}) at ${k(x.rate)} events/s, the highest rate both it and (A) ran without loss: agent CPU ${f(x.A_agent_cpu_us_per_event, 1)} µs per event in (A), ` +
        `${f(x.X_agent_cpu_us_per_event, 1)} in (${X}) (${f(x.A_agent_cpu_s, 2)} s and ${f(x.X_agent_cpu_s, 2)} s over the step)` +
        `${x.X_clients_cpu_s ? `; the API clients took ${f(x.X_clients_cpu_s, 2)} s` : ''}.`,
    );
  }
  const builds = Object.values(rep.builds ?? {});
  L.push('');
  if (builds.length > 1) {
    L.push(
      `**The build changed during the run** (someone rebuilt Osprey): the steps ran ${builds.length} builds — ` +
        `${builds.map((b) => `${b.id} (newest file ${b.newest_file_time}, ${b.steps} steps)`).join('; ')}. Compare with care.`,
    );
  } else if (builds.length === 1) {
    L.push(
      `Build measured: ${builds[0].id} (dist/ and bpf/.output/, newest file ${builds[0].newest_file_time}).`,
    );
  }
  const bg = [];
  const share = [];
  for (const s of rep.steps) {
    if (typeof s.background_busy_cores === 'number') bg.push(s.background_busy_cores);
    if (typeof s.others_cpu_fraction === 'number') share.push(s.others_cpu_fraction);
  }
  L.push('');
  L.push(
    `Background load in the idle second before each loop: median ${f(median(bg), 2)}, max ${f(bg.length ? Math.max(...bg) : null, 2)} busy cores of ${m.cpus}. ` +
      `Others' share of the machine during the loops kept: median ${f((median(share) ?? 0) * 100, 0)} %, max ${f(share.length ? Math.max(...share) * 100 : null, 0)} %; ` +
      `${rep.discarded_contended_runs.length} contended step(s) (> ${CONTENDED_FRACTION * 100} %) run again and left out.`,
  );
  const foreign = [
    ...new Set(rep.steps.flatMap((s) => [...(s.other_observers ?? []), ...(s.other_benchmarks ?? [])])),
  ];
  if (foreign.length) {
    L.push('');
    L.push('Other observers or benchmarks running during some steps:');
    for (const o of foreign) L.push(`- ${o}`);
  }
  const notReached = rep.steps.filter((s) => !s.error && s.reached_target === false);
  if (notReached.length) {
    L.push('');
    L.push(
      `Paced steps whose loop fell below ${REACHED * 100} % of the target (not counted as zero-loss): ${notReached
        .map((s) => `(${s.config}) ${k(s.rate)} round ${s.round}: ${k(s.opens_per_s)}/s`)
        .join('; ')}.`,
    );
  }
  if (rep.errors.length) {
    L.push('');
    L.push('Errors:');
    for (const e of rep.errors) L.push(`- (${e.config}) ${e.rate} round ${e.round}: ${e.error}`);
  }
  L.push('');
  return L.join('\n');
}

// ---------------------------------------------------------------------------
// entry: cleanup on every way out

runBenchmark({
  name: 'bench/service',
  main,
  cleanup,
  log,
  usage: USAGE,
  isUsage: (err) => err instanceof UsageError,
});

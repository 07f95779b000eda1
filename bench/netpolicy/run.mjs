// The network policy benchmark: what does enforcing a policy of N CIDR rules
// cost new TCP connections and requests over established ones, in Osprey
// (LPM tries, one lookup whatever N is) and as an iptables chain (a rule walk)?
//
// One run builds a test host in a network namespace (a server behind a veth,
// 10.248.250.2), then measures, round by round and interleaved so slow drifts
// of a shared machine hit every mode alike:
//   a  no policy at all (the baseline every ratio is against)
//   o  Osprey, the client a workload (`osprey run`), N non-matching CIDR rules
//      plus one allow for the server; every flow reported and exported
//   O  the same with `network-flows: denied` (allowed traffic not reported)
//   i  the same rules as an iptables chain, jumped to from OUTPUT for the veth
// for N in --rules, with two loads (bench/netpolicy/connbench.c): conn
// (connect+accept+close as fast as it goes) and rr (64-byte request/response
// over 4 established connections). See bench/README.md (Network policy).
// Run it through bench/netpolicy/run.sh.

import { execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  Cleanup,
  cpuSeconds,
  killAndWaitSync,
  median,
  run,
  runBenchmark,
  saveResults,
  sleep,
  sleepSync,
  which,
} from '../lib/proc.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RESULTS = path.join(REPO, 'bench/results');
const OSPREY = path.join(REPO, 'bin/osprey');
const TARGET_PCT = 5;
const QUIET_CORES = 0.25;
/** seconds between installing rules and the next load */
const SETTLE_AFTER_INSTALL_S = 5;
const CONTENDED_FRACTION = 0.15;
const SUBNET = '10.248.250';
const HOST_IP = `${SUBNET}.1`;
const SERVER_IP = `${SUBNET}.2`;
const CONN_PORT = 9000;
const RR_PORT = 9001;
const CHAIN = 'OSPREY_BENCH';

const MODES = {
  a: 'no policy (baseline)',
  o: 'Osprey, all flows reported',
  O: 'Osprey, denied flows only',
  i: 'iptables chain',
};

const USAGE = `usage: bench/netpolicy/run.sh [--rules LIST] [--repeat R] [--seconds S] [--threads T]
                             [--modes aoOi] [--quiet-wait S] [--retries K] [--paired] [--keep]

  --rules LIST    CIDR rule counts (default 0,100,1000,10000,100000)
  --repeat R      rounds; each round measures every mode at every rule count once (default 3)
  --seconds S     measured seconds of each load, after 0.5 s of warm-up (default 3)
  --threads T     client threads of the conn load (default 2 = the cores here)
  --modes LIST    modes, e.g. "ao" (default aoOi; a is required)
  --quiet-wait S  before each measurement, wait up to S seconds (default 30) for the machine
                  to go quiet (<= ${QUIET_CORES} busy cores); the load seen is reported either way
  --retries K     measure again, up to K times (default 2), when other work took more than
                  ${CONTENDED_FRACTION * 100} % of the machine's CPU during a load
  --paired        also measure a baseline load right before each Osprey load, and report
                  Osprey against it (the median of the pairs' ratios)
  --keep          keep the scratch directory (policies, rule files, agent logs)`;

const cleanup = new Cleanup();
const log = (msg) => console.error(`[bench/netpolicy] ${msg}`);
class UsageError extends Error {}

async function main() {
  const { values } = parseArgs({
    options: {
      rules: { type: 'string', default: '0,100,1000,10000,100000' },
      repeat: { type: 'string', default: '3' },
      seconds: { type: 'string', default: '3' },
      threads: { type: 'string', default: '2' },
      modes: { type: 'string', default: 'aoOi' },
      'quiet-wait': { type: 'string', default: '30' },
      retries: { type: 'string', default: '2' },
      keep: { type: 'boolean', default: false },
      paired: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const rules = values.rules.split(',').map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 0 || n > 1_000_000)
      throw new UsageError(`--rules: "${s}" is not a count 0..1000000`);
    return n;
  });
  const repeat = positiveInt('--repeat', values.repeat);
  const seconds = Number(values.seconds);
  if (!(seconds > 0)) throw new UsageError(`--seconds must be > 0, got '${values.seconds}'`);
  const threads = positiveInt('--threads', values.threads);
  const modes = [...new Set(values.modes.split(''))];
  for (const m of modes)
    if (!(m in MODES)) throw new UsageError(`--modes: unknown mode '${m}'; give letters from aoOi`);
  if (!modes.includes('a')) throw new UsageError('--modes must include a: every ratio is against it');
  const quietWaitS = Number(values['quiet-wait']);
  const retries = Number(values.retries);
  if (process.getuid?.() !== 0) throw new UsageError('run as root');

  const skipped = {};
  if ((modes.includes('o') || modes.includes('O')) && !existsSync(path.join(REPO, 'dist/src/cli/main.js'))) {
    throw new Error('dist/src/cli/main.js is missing: build Osprey first (npm run build)');
  }
  const iptables = which('iptables');
  const restore = which('iptables-restore');
  let iptablesVersion = null;
  if (modes.includes('i')) {
    if (!iptables || !restore) skipped.i = 'iptables not installed (apt-get install -y iptables)';
    else iptablesVersion = execFileSync(iptables, ['--version'], { encoding: 'utf8' }).trim();
  }

  const work = mkdtempSync(path.join(os.tmpdir(), 'osprey-bench-netpolicy-'));
  cleanup.add('scratch directory', () => {
    if (values.keep) log(`kept scratch directory ${work}`);
    else rmSync(work, { recursive: true, force: true });
  });
  const connbench = buildConnbench(work);
  const net = makeNet();
  const servers = {
    conn: await startServer(net, connbench, CONN_PORT, 'conn'),
    rr: await startServer(net, connbench, RR_PORT, 'echo'),
  };
  const cg = makeCgroups();
  const ctx = {
    repeat,
    work,
    connbench,
    net,
    servers,
    cg,
    seconds,
    threads,
    quietWaitS,
    retries,
    agents: {},
    skipped,
  };

  for (const m of ['o', 'O']) {
    if (!modes.includes(m)) continue;
    ctx.agents[m] = await startAgent(ctx, m);
  }
  // policies and rule files for every N, written once
  ctx.policyFiles = new Map(rules.map((n) => [n, writePolicy(work, n)]));
  if (modes.includes('i') && !skipped.i) {
    ctx.iptables = { bin: iptables, restore, files: new Map(rules.map((n) => [n, writeIptables(work, n)])) };
    ctx.iptables.hadFilterTable = nftHasFilterTable();
    removeChain(ctx); // a leftover of a crashed run
    // undone in reverse: the chain first, then the table if it is ours and empty
    cleanup.add('iptables filter table', () => dropFilterTableIfOurs(ctx));
    cleanup.add('iptables chain', () => removeChain(ctx));
  }
  log(
    `host ${SERVER_IP} in netns ${net.ns}; loads: conn ${threads} thread(s), rr 4 connections x 64 B; ` +
      `${seconds} s each; rules ${rules.join(', ')}; ${repeat} round(s); modes ${modes.join('')}`,
  );

  const runs = [];
  const pairs = [];
  const discarded = [];
  for (let round = 1; round <= repeat; round++) {
    // alternate the order of rule counts, so a drift within a round does not favour one end
    const ns = round % 2 ? rules : [...rules].reverse();
    const configs = modes.flatMap((m) =>
      m === 'a' ? [{ mode: 'a', n: null }] : ns.map((n) => ({ mode: m, n })),
    );
    for (const c of configs) {
      if (skipped[c.mode]) continue;
      for (const load of ['conn', 'rr']) {
        // --paired: a baseline load right before each Osprey load, so that a drift of the
        // machine between loads does not land in the ratio (iptables' chain would be in the way)
        const pair =
          values.paired && (c.mode === 'o' || c.mode === 'O')
            ? await measureRetrying(
                ctx,
                { mode: 'a', n: null },
                load,
                round,
                retries,
                discarded,
                `pair for (${c.mode}) ${label(c)}`,
              )
            : null;
        const r = await measureRetrying(ctx, c, load, round, retries, discarded, `(${c.mode}) ${label(c)}`);
        if (pair) {
          pairs.push(pair);
          if (!pair.error) {
            r.paired_base_per_s = pair.per_s;
            r.paired_base_cpu_us_per_op = pair.cpu_us_per_op;
          }
        }
        runs.push(r);
      }
      if (c.mode === 'i') removeChain(ctx);
    }
  }

  const report = summarize(ctx, runs, {
    rules,
    repeat,
    seconds,
    threads,
    modes,
    retries,
    paired: values.paired,
    iptablesVersion,
  });
  report.discarded_contended_runs = discarded;
  report.paired_baseline_runs = pairs;
  report.install_ms = installTimes([...runs, ...discarded]);
  saveResults(RESULTS, 'netpolicy', report, renderMarkdown(report), log);
  return runs.some((r) => r.error) ? 1 : 0;
}

/** One load, run again (up to `retries` times) while others took too much of the machine. */
async function measureRetrying(ctx, c, load, round, retries, discarded, what) {
  for (let attempt = 0; ; attempt++) {
    log(`round ${round}/${ctx.repeat}: ${what} ${load}${attempt ? ` — attempt ${attempt + 1}` : ''}`);
    const r = await measure(ctx, c, load, round);
    log(
      r.error
        ? `  failed: ${r.error}`
        : `  ${r.per_s.toFixed(0)}/s, ${r.cpu_us_per_op.toFixed(1)} µs CPU per op, others ${(r.others_fraction * 100).toFixed(0)} %`,
    );
    if (!r.error && r.contended && attempt < retries) {
      discarded.push(r);
      continue;
    }
    r.attempts = attempt + 1;
    return r;
  }
}

function positiveInt(flag, s) {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer, got '${s}'`);
  return n;
}

function label(c) {
  return c.mode === 'a' ? MODES.a : `${MODES[c.mode]}, N=${c.n}`;
}

// ---------------------------------------------------------------------------
// set-up: the load tool, the test host, cgroups, agents, policies, rules

function buildConnbench(work) {
  const cc = process.env.CC || which('cc') || which('gcc') || which('clang');
  if (!cc) throw new Error('no C compiler found: install gcc (apt-get install gcc) or set CC');
  const out = path.join(work, 'connbench');
  execFileSync(
    cc,
    ['-O2', '-Wall', '-Wextra', '-pthread', '-o', out, path.join(REPO, 'bench/netpolicy/connbench.c')],
    {
      stdio: 'inherit',
    },
  );
  return out;
}

function ip(...args) {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A network namespace joined to this one by a veth: this side .1, the server .2. */
function makeNet() {
  const tag = process.pid % 100000;
  const net = { ns: `osp-bnp-${process.pid}`, hostIf: `obnp${tag}h`, nsIf: `obnp${tag}n` };
  if (execFileSync('ip', ['-4', 'addr', 'show'], { encoding: 'utf8' }).includes(`${SUBNET}.`)) {
    throw new Error(`${SUBNET}.0/24 is in use here already (another benchmark running?); stop it first`);
  }
  const remove = () => {
    try {
      ip('netns', 'del', net.ns);
    } catch {}
    try {
      ip('link', 'del', net.hostIf);
    } catch {}
  };
  cleanup.add(`network namespace ${net.ns}`, remove);
  ip('netns', 'add', net.ns);
  ip('link', 'add', net.hostIf, 'type', 'veth', 'peer', 'name', net.nsIf);
  ip('link', 'set', net.nsIf, 'netns', net.ns);
  ip('addr', 'add', `${HOST_IP}/24`, 'dev', net.hostIf);
  ip('link', 'set', net.hostIf, 'up');
  ip('-n', net.ns, 'addr', 'add', `${SERVER_IP}/24`, 'dev', net.nsIf);
  ip('-n', net.ns, 'link', 'set', net.nsIf, 'up');
  ip('-n', net.ns, 'link', 'set', 'lo', 'up');
  return net;
}

async function startServer(net, connbench, port, kind) {
  const child = spawn('ip', ['netns', 'exec', net.ns, connbench, 'server', SERVER_IP, String(port), kind], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  cleanup.add(`server ${kind}`, () => killAndWaitSync(child.pid, 'SIGKILL', 5000));
  const line = await firstLine(child, 5000);
  if (line !== 'ready') throw new Error(`server ${kind}: ${line}`);
  return child;
}

function cgroup2Root() {
  for (const l of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
    const f = l.split(' ');
    if (f[2] === 'cgroup2') return f[1];
  }
  throw new Error('no cgroup v2 hierarchy is mounted');
}

/** <cgroup2>/osprey-bench-np-PID: plain/ for the baseline and iptables clients, one dir per agent. */
function makeCgroups() {
  const root = path.join(cgroup2Root(), `osprey-bench-np-${process.pid}`);
  mkdirSync(path.join(root, 'plain'), { recursive: true });
  cleanup.add(`cgroups under ${root}`, () => removeCgroupTree(root));
  return { root, plain: path.join(root, 'plain') };
}

function removeCgroupTree(dir) {
  if (!existsSync(dir)) return;
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    if (d.isDirectory()) removeCgroupTree(path.join(dir, d.name));
  }
  try {
    writeFileSync(path.join(dir, 'cgroup.kill'), '1');
  } catch {}
  for (let i = 0; i < 100; i++) {
    try {
      rmdirSync(dir);
      return;
    } catch (err) {
      if (err.code === 'ENOENT') return;
      sleepSync(50);
    }
  }
}

/** An agent scoped to its own cgroup, with one long-lived workload (app=bench) the clients join. */
async function startAgent(ctx, m) {
  const dir = path.join(ctx.work, `agent-${m === 'o' ? 'all' : 'denied'}`);
  const cgDir = path.join(ctx.cg.root, `osprey-${m === 'o' ? 'all' : 'denied'}`);
  mkdirSync(dir, { recursive: true });
  mkdirSync(cgDir, { recursive: true });
  const sock = path.join(dir, 'osprey.sock');
  const args = [
    'agent',
    '--api-socket',
    sock,
    '--state-dir',
    path.join(dir, 'state'),
    '--export-file',
    path.join(dir, 'events.log'),
    '--no-export-stdout',
    '--no-seed',
    '--node-name',
    'bench',
    '--cgroup',
    cgDir,
    '--workload-cgroup',
    cgDir,
    '--network-flows',
    m === 'o' ? 'all' : 'denied',
    '--no-metrics-address',
    '--no-ui-address',
    '--no-store-path',
    // BPF ns per op come from the kernel's run-time statistics
    '--bpf-stats',
  ];
  const child = spawn(OSPREY, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => {
    stderr += d;
  });
  cleanup.add(`agent (${m})`, () => killAndWaitSync(child.pid, 'SIGTERM', 15000));
  const t0 = Date.now();
  while (!stderr.includes('ready:')) {
    if (child.exitCode !== null || Date.now() - t0 > 60000)
      throw new Error(`agent (${m}) did not start: ${stderr}`);
    await sleep(100);
  }
  writeFileSync(path.join(dir, 'agent.args'), args.join(' '));
  const keeper = spawn(
    OSPREY,
    ['run', '--socket', sock, '--label', 'app=bench', '--name', 'bench', '--', 'sleep', '1000000'],
    {
      stdio: 'ignore',
    },
  );
  cleanup.add(`workload keeper (${m})`, () => killAndWaitSync(keeper.pid, 'SIGKILL', 5000));
  const workload = path.join(cgDir, 'bench');
  while (
    !existsSync(path.join(workload, 'cgroup.procs')) ||
    readFileSync(path.join(workload, 'cgroup.procs'), 'utf8').trim() === ''
  ) {
    if (keeper.exitCode !== null || Date.now() - t0 > 60000)
      throw new Error(`osprey run (${m}) did not start`);
    await sleep(50);
  }
  return { mode: m, pid: child.pid, sock, workload, policyN: undefined, stderr: () => stderr };
}

/** N non-matching /32s in rules of 100 (each rule its own port), then the allow for the server. */
function cidrOf(k) {
  return `172.${16 + ((k >> 16) & 15)}.${(k >> 8) & 255}.${k & 255}/32`;
}

function writePolicy(work, n) {
  let y = `apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: bench\nspec:\n  endpointSelector:\n    matchLabels: {app: bench}\n  egress:\n`;
  for (let g = 0; g * 100 < n; g++) {
    const cidrs = [];
    for (let i = g * 100; i < Math.min(n, g * 100 + 100); i++) cidrs.push(cidrOf(i));
    y += `    - toCIDR: [${cidrs.join(', ')}]\n      toPorts: [{ports: [{port: "${1024 + g}", protocol: TCP}]}]\n`;
  }
  y += `    - toCIDR: [${SERVER_IP}/32]\n      toPorts: [{ports: [{port: "${CONN_PORT}", protocol: TCP}, {port: "${RR_PORT}", protocol: TCP}]}]\n`;
  const f = path.join(work, `policy-${n}.yaml`);
  writeFileSync(f, y);
  return f;
}

function writeIptables(work, n) {
  let s = `*filter\n:${CHAIN} - [0:0]\n`;
  for (let i = 0; i < n; i++)
    s += `-A ${CHAIN} -d ${cidrOf(i)} -p tcp --dport ${1024 + Math.floor(i / 100)} -j ACCEPT\n`;
  s += `-A ${CHAIN} -d ${SERVER_IP}/32 -p tcp --dport ${CONN_PORT} -j ACCEPT\n`;
  s += `-A ${CHAIN} -d ${SERVER_IP}/32 -p tcp --dport ${RR_PORT} -j ACCEPT\n`;
  s += `-A ${CHAIN} -j DROP\nCOMMIT\n`;
  const f = path.join(work, `iptables-${n}.rules`);
  writeFileSync(f, s);
  return f;
}

// ---------------------------------------------------------------------------
// applying a mode

async function osprey(agent, ...args) {
  const r = await run(OSPREY, [...args, '--socket', agent.sock], {}, cleanup);
  if (r.code !== 0)
    throw new Error(`osprey ${args.join(' ')}: ${(r.stderr || r.stdout).trim().slice(0, 500)}`);
  return r.stdout;
}

/** Make policy `bench` the one of N rules; returns how long `osprey policy add` took (ms). */
async function applyPolicy(ctx, agent, n) {
  if (agent.policyN === n) return null;
  if (agent.policyN !== undefined) await osprey(agent, 'policy', 'delete', 'bench');
  agent.policyN = undefined;
  const t0 = process.hrtime.bigint();
  await osprey(agent, 'policy', 'add', ctx.policyFiles.get(n));
  agent.policyN = n;
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function applyIptables(ctx, n) {
  const t0 = process.hrtime.bigint();
  execFileSync(ctx.iptables.restore, ['--noflush', ctx.iptables.files.get(n)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  execFileSync(ctx.iptables.bin, ['-A', 'OUTPUT', '-o', ctx.net.hostIf, '-j', CHAIN], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function removeChain(ctx) {
  if (!ctx.iptables) return;
  const ipt = (...a) => {
    try {
      execFileSync(ctx.iptables.bin, a, { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  while (ipt('-D', 'OUTPUT', '-o', ctx.net.hostIf, '-j', CHAIN)) {}
  ipt('-F', CHAIN);
  ipt('-X', CHAIN);
}

function nftHasFilterTable() {
  try {
    execFileSync('nft', ['list', 'table', 'ip', 'filter'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** iptables-nft creates the ip filter table: remove it again when it was not there before and holds nothing. */
function dropFilterTableIfOurs(ctx) {
  if (!ctx.iptables || ctx.iptables.hadFilterTable || !which('nft')) return;
  const rules = execFileSync(ctx.iptables.bin, ['-S'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.startsWith('-A') || l.startsWith('-N'));
  if (rules.length === 0) {
    try {
      execFileSync('nft', ['delete', 'table', 'ip', 'filter'], { stdio: 'ignore' });
    } catch {}
  }
}

// ---------------------------------------------------------------------------
// one measurement

/** user+nice+system, softirq+irq, and total CPU seconds of the machine. */
function machineCpu() {
  const v = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = v;
  return {
    tasks: (user + nice + system) / 100,
    irq: (irq + softirq) / 100,
    total: (user + nice + system + idle + iowait + irq + softirq + steal) / 100,
  };
}

async function quietWait(ctx) {
  const t0 = Date.now();
  for (;;) {
    const a = machineCpu();
    await sleep(1000);
    const b = machineCpu();
    const cores = (b.tasks + b.irq - a.tasks - a.irq) / ((b.total - a.total) / os.cpus().length);
    if (cores <= QUIET_CORES || Date.now() - t0 >= ctx.quietWaitS * 1000) {
      return {
        background_busy_cores: round3(cores),
        waited_for_quiet_s: round3((Date.now() - t0) / 1000 - 1),
      };
    }
  }
}

async function measure(ctx, c, load, round) {
  const base = { mode: c.mode, n: c.n, load, round };
  try {
    let cgroup = ctx.cg.plain;
    let install_ms = null;
    const agent = c.mode === 'o' || c.mode === 'O' ? ctx.agents[c.mode] : undefined;
    if (agent) {
      install_ms = await applyPolicy(ctx, agent, c.n);
      cgroup = agent.workload;
    } else if (c.mode === 'i' && load === 'conn') {
      removeChain(ctx);
      install_ms = applyIptables(ctx, c.n);
    }
    // an install of 100,000 rules leaves the kernel work to do (the old table's entries are
    // freed after an RCU grace period): give it time to finish before the next load
    if (install_ms !== null) await sleep(SETTLE_AFTER_INSTALL_S * 1000);
    const quiet = await quietWait(ctx);
    const before = agent ? await datapathCounters(agent) : null;
    const bpf0 = agent ? bpfStats(agent) : null;
    const agentPids = Object.values(ctx.agents).map((a) => a.pid);
    const server = ctx.servers[load];
    const srv0 = cpuSeconds(server.pid) ?? 0;
    const ag0 = agentPids.map((p) => cpuSeconds(p) ?? 0);
    const m0 = machineCpu();
    const t0 = process.hrtime.bigint();
    const args =
      load === 'conn'
        ? ['conn', SERVER_IP, String(CONN_PORT), String(ctx.seconds), String(ctx.threads)]
        : ['rr', SERVER_IP, String(RR_PORT), String(ctx.seconds), '4', '64'];
    const r = await run(
      '/bin/sh',
      ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup, ctx.connbench, ...args],
      {},
      cleanup,
    );
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const m1 = machineCpu();
    const srvCpu = (cpuSeconds(server.pid) ?? 0) - srv0;
    const agentCpu = agentPids.reduce((s, p, i) => s + ((cpuSeconds(p) ?? 0) - ag0[i]), 0);
    let out;
    try {
      out = JSON.parse(r.stdout.trim().split('\n').pop());
    } catch {
      throw new Error(`connbench exited ${r.code ?? r.signal}: ${r.stderr.trim() || r.stdout.trim()}`);
    }
    if (out.ops === 0) throw new Error(`no ${load} operation succeeded (first error: ${out.first_error})`);
    const bpf = agent ? bpfDelta(bpf0, bpfStats(agent), out.all_ops) : null;
    const after = agent ? await datapathCounters(agent) : null;
    const ours = out.cpu_s + srvCpu + agentCpu;
    const others = Math.max(0, m1.tasks - m0.tasks - ours);
    const others_fraction = round3(others / (wall * os.cpus().length));
    return {
      ...base,
      per_s: out.per_s,
      ops: out.ops,
      errors: out.errors,
      first_error: out.first_error || undefined,
      all_ops: out.all_ops,
      client_cpu_s: round3(out.cpu_s),
      server_cpu_s: round3(srvCpu),
      agents_cpu_s: round3(agentCpu),
      agents_us_per_op: (agentCpu / out.all_ops) * 1e6,
      softirq_cpu_s: round3(m1.irq - m0.irq),
      cpu_us_per_op: (ours / out.all_ops) * 1e6,
      wall_s: round3(wall),
      others_fraction,
      contended: others_fraction > CONTENDED_FRACTION,
      install_ms: install_ms === null ? null : round3(install_ms),
      bpf_ns_per_op: bpf?.ns_per_op ?? null,
      bpf_per_program: bpf?.per_program ?? null,
      flows: after && before ? after.flows - before.flows : null,
      flows_lost:
        after && before
          ? after.ringbuf_drops - before.ringbuf_drops + (after.export_dropped - before.export_dropped)
          : null,
      // where they were lost: the kernel's flow ring was full, or the export file's queue
      flows_lost_ring: after && before ? after.ringbuf_drops - before.ringbuf_drops : null,
      flows_lost_export: after && before ? after.export_dropped - before.export_dropped : null,
      ...quiet,
    };
  } catch (err) {
    return { ...base, error: err instanceof Error ? err.message : String(err) };
  }
}

/** Ids of the BPF programs a process holds (its fds, from fdinfo). */
function progIdsOf(pid) {
  const ids = new Set();
  let fds = [];
  try {
    fds = readdirSync(`/proc/${pid}/fdinfo`);
  } catch {
    return ids;
  }
  for (const fd of fds) {
    try {
      const m = /^prog_id:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      if (m) ids.add(Number(m[1]));
    } catch {
      // closed meanwhile
    }
  }
  return ids;
}

/**
 * Run time and run count of the agent's network policy programs (np_*),
 * from the kernel's statistics (the agent turns them on while it runs: --bpf-stats).
 */
function bpfStats(agent) {
  const ids = progIdsOf(agent.pid);
  const out = {};
  let list = [];
  try {
    list = JSON.parse(
      execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8', maxBuffer: 64 << 20 }),
    );
  } catch {
    return null;
  }
  for (const p of list) {
    if (!ids.has(p.id) || !p.name?.startsWith('np_')) continue;
    out[p.name] ??= { run_time_ns: 0, run_cnt: 0 };
    const o = out[p.name];
    o.run_time_ns += p.run_time_ns ?? 0;
    o.run_cnt += p.run_cnt ?? 0;
  }
  return out;
}

function bpfDelta(before, after, ops) {
  if (!before || !after) return null;
  const per_program = {};
  let ns = 0;
  for (const [name, a] of Object.entries(after)) {
    const b = before[name] ?? { run_time_ns: 0, run_cnt: 0 };
    const dt = a.run_time_ns - b.run_time_ns;
    const dc = a.run_cnt - b.run_cnt;
    ns += dt;
    per_program[name] = {
      ns_per_op: round3(dt / ops),
      runs_per_op: round3(dc / ops),
      ns_per_run: dc ? round3(dt / dc) : null,
    };
  }
  return { ns_per_op: round3(ns / ops), per_program };
}

async function datapathCounters(agent) {
  const s = JSON.parse(await osprey(agent, 'status', '-o', 'json'));
  return {
    flows: s.network?.flows?.total ?? 0,
    ringbuf_drops: s.network?.datapath?.ringbuf_drops ?? 0,
    // the export file's queue: a flow the agent read but could not queue for the file is lost too
    export_dropped: s.export_file?.dropped ?? 0,
  };
}

function firstLine(child, ms) {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    const timer = setTimeout(() => reject(new Error(`no output within ${ms} ms`)), ms);
    rl.once('line', (l) => {
      clearTimeout(timer);
      rl.close();
      resolve(l);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code}) before it was ready`));
    });
  });
}

// ---------------------------------------------------------------------------
// report

const round3 = (x) => (Number.isFinite(x) ? Math.round(x * 1000) / 1000 : x);

function summarize(ctx, runs, params) {
  const ok = runs.filter((r) => !r.error);
  const pick = (mode, n, load) => ok.filter((r) => r.mode === mode && r.n === n && r.load === load);
  const rows = {};
  for (const load of ['conn', 'rr']) {
    const base = pick('a', null, load);
    const baseMed = median(base.map((r) => r.per_s));
    const baseCpu = median(base.map((r) => r.cpu_us_per_op));
    rows[load] = [];
    for (const m of params.modes) {
      for (const n of m === 'a' ? [null] : params.rules) {
        const rs = pick(m, n, load);
        if (rs.length === 0) {
          rows[load].push({ mode: m, n, name: MODES[m], skipped: ctx.skipped[m] ?? 'no successful run' });
          continue;
        }
        const zero = m === 'a' ? rs : pick(m, 0, load);
        const med = median(rs.map((r) => r.per_s));
        const cpu = median(rs.map((r) => r.cpu_us_per_op));
        rows[load].push({
          mode: m,
          n,
          name: MODES[m],
          runs: rs.length,
          per_s_median: round3(med),
          per_s_all: rs.map((r) => round3(r.per_s)),
          ratio_vs_a: baseMed ? round3(med / baseMed) : null,
          ratio_vs_n0: zero.length ? round3(med / median(zero.map((r) => r.per_s))) : null,
          paired_base_ratio_median: pairedMedian(rs, 'per_s', 'paired_base_per_s'),
          paired_base_cpu_ratio_median: pairedMedian(rs, 'cpu_us_per_op', 'paired_base_cpu_us_per_op'),
          paired_ratios_vs_a: rs.map((r) => {
            const a = base.find((x) => x.round === r.round);
            return a ? round3(r.per_s / a.per_s) : null;
          }),
          cpu_us_per_op_median: round3(cpu),
          cpu_ratio_vs_a: baseCpu ? round3(cpu / baseCpu) : null,
          agents_cpu_s_median: round3(median(rs.map((r) => r.agents_cpu_s))),
          // runs before 2026-11-27 did not record it
          agents_us_per_op_median: rs.every((r) => typeof r.agents_us_per_op === 'number')
            ? round3(median(rs.map((r) => r.agents_us_per_op)))
            : null,
          bpf_ns_per_op_median: rs.some((r) => r.bpf_ns_per_op !== null && r.bpf_ns_per_op !== undefined)
            ? round3(median(rs.map((r) => r.bpf_ns_per_op).filter((x) => typeof x === 'number')))
            : null,
          bpf_per_program: rs.find((r) => r.bpf_per_program)?.bpf_per_program ?? null,
          flows_median: rs[0].flows === null ? null : median(rs.map((r) => r.flows)),
          flows_lost_all: rs.map((r) => r.flows_lost),
          errors_all: rs.map((r) => r.errors),
          background_busy_cores_all: rs.map((r) => r.background_busy_cores),
          others_fraction_all: rs.map((r) => r.others_fraction),
        });
      }
    }
  }
  return {
    benchmark: 'netpolicy',
    date: new Date().toISOString(),
    machine: {
      kernel: os.release(),
      cpus: os.cpus().length,
      cpu_model: os.cpus()[0]?.model ?? 'unknown',
      mem_gb: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      iptables: params.iptablesVersion,
    },
    params: { ...params, conn_port: CONN_PORT, rr: '4 connections, 64-byte request and response' },
    target_pct: TARGET_PCT,
    rows,
    errors: runs
      .filter((r) => r.error)
      .map((r) => ({ mode: r.mode, n: r.n, load: r.load, round: r.round, error: r.error })),
    runs,
  };
}

/** Median over the runs that had a paired baseline of run[field] / run[baseField]; null without any. */
function pairedMedian(rs, field, baseField) {
  const paired = rs.filter((r) => r[baseField]);
  return paired.length ? round3(median(paired.map((r) => r[field] / r[baseField]))) : null;
}

/** Policy install times (ms) by mode and N, from every attempt (a retried load does not install again). */
function installTimes(all) {
  const out = {};
  for (const r of all) {
    if (r.install_ms === null || r.install_ms === undefined) continue;
    const k = `${r.mode}:${r.n}`;
    out[k] ??= [];
    out[k].push(r.install_ms);
  }
  return out;
}

function renderMarkdown(rep) {
  const f = (x, d = 3) => (x === null || x === undefined || Number.isNaN(x) ? '—' : Number(x).toFixed(d));
  const p = rep.params;
  const lines = [];
  lines.push(`### Network policy — ${rep.date.slice(0, 10)}`);
  lines.push('');
  lines.push(
    `${rep.machine.cpus} CPUs (${rep.machine.cpu_model}), kernel ${rep.machine.kernel}, Node ${rep.machine.node}` +
      `${rep.machine.iptables ? `, ${rep.machine.iptables}` : ''}; medians of ${p.repeat} interleaved round(s), ` +
      `${p.seconds} s per load after 0.5 s warm-up.`,
  );
  const table = (load, title, unit) => {
    lines.push('');
    lines.push(`**${title}**`);
    lines.push('');
    lines.push(
      `| mode | rules | ${unit} (median) | all runs | vs (a) | vs same mode at 0 rules | per-round vs (a) | CPU µs per op | CPU vs (a) | BPF ns per op | agents' CPU s | flows / lost | policy install ms |`,
    );
    lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const r of rep.rows[load]) {
      const name = `(${r.mode}) ${r.name}`;
      if (r.skipped) {
        lines.push(`| ${name} | ${r.n ?? '—'} | skipped: ${r.skipped} | | | | | | | | | | |`);
        continue;
      }
      const flows =
        r.flows_median === null
          ? '—'
          : `${f(r.flows_median, 0)} / ${r.flows_lost_all.map((x) => x ?? '—').join(', ')}`;
      const times = load === 'conn' ? (rep.install_ms[`${r.mode}:${r.n}`] ?? []) : [];
      const inst = times.length ? times.map((x) => f(x, 0)).join(', ') : '—';
      lines.push(
        `| ${name} | ${r.n ?? '—'} | ${f(r.per_s_median, 0)} | ${r.per_s_all.map((x) => f(x, 0)).join(' / ')} | ` +
          `${f(r.ratio_vs_a)} | ${r.mode === 'a' ? '—' : f(r.ratio_vs_n0)} | ${r.paired_ratios_vs_a.map((x) => f(x, 2)).join(' / ')} | ` +
          `${f(r.cpu_us_per_op_median, 1)} | ${f(r.cpu_ratio_vs_a)} | ${f(r.bpf_ns_per_op_median, 0)} | ${f(r.agents_cpu_s_median, 2)} | ${flows} | ${inst} |`,
      );
    }
  };
  table('conn', 'New TCP connections per second (connect + accept + close)', 'conn/s');
  table('rr', 'Requests per second over 4 established connections (64 B each way)', 'req/s');

  lines.push('');
  lines.push(`Targets (Osprey at the largest rule count, within ${rep.target_pct} %):`);
  lines.push('');
  const paired = rep.params.paired;
  lines.push(
    '| mode | load | N | rate vs same mode at 0 rules | rate vs no policy (a) | CPU per op vs 0 rules | CPU per op vs (a) | BPF ns per op at 0 → N rules |' +
      (paired ? ' rate vs (a), paired | CPU per op vs (a), paired |' : ''),
  );
  lines.push(`|---|---|---|---|---|---|---|---|${paired ? '---|---|' : ''}`);
  const maxN = Math.max(...p.rules);
  for (const load of ['conn', 'rr']) {
    for (const r of rep.rows[load]) {
      if ((r.mode !== 'o' && r.mode !== 'O') || r.n !== maxN || r.skipped) continue;
      const okN0 = r.ratio_vs_n0 !== null && r.ratio_vs_n0 >= 1 - rep.target_pct / 100;
      const okA = r.ratio_vs_a !== null && r.ratio_vs_a >= 1 - rep.target_pct / 100;
      const zero = rep.rows[load].find((x) => x.mode === r.mode && x.n === 0);
      const cpuN0 = zero?.cpu_us_per_op_median ? r.cpu_us_per_op_median / zero.cpu_us_per_op_median : null;
      const okC0 = cpuN0 !== null && cpuN0 <= 1 + rep.target_pct / 100;
      const okCa = r.cpu_ratio_vs_a !== null && r.cpu_ratio_vs_a <= 1 + rep.target_pct / 100;
      lines.push(
        `| (${r.mode}) ${r.name} | ${load} | ${r.n} | ${f(r.ratio_vs_n0)} ${okN0 ? 'met' : '**missed**'} | ` +
          `${f(r.ratio_vs_a)} ${okA ? 'met' : '**missed**'} | ${f(cpuN0)} ${okC0 ? 'met' : '**missed**'} | ` +
          `${f(r.cpu_ratio_vs_a)} ${okCa ? 'met' : '**missed**'} | ${f(zero?.bpf_ns_per_op_median, 0)} → ${f(r.bpf_ns_per_op_median, 0)} |` +
          (paired
            ? ` ${f(r.paired_base_ratio_median)} ${r.paired_base_ratio_median >= 1 - rep.target_pct / 100 ? 'met' : '**missed**'} | ` +
              `${f(r.paired_base_cpu_ratio_median)} ${r.paired_base_cpu_ratio_median <= 1 + rep.target_pct / 100 ? 'met' : '**missed**'} |`
            : ''),
      );
    }
  }
  // the target's arithmetic for the connection load: what 5 % of (a)'s CPU per connection leaves
  // an observer, beside what each Osprey mode's agents took per connection at the largest rule count
  const baseConn = rep.rows.conn.find((r) => r.mode === 'a' && !r.skipped);
  const agentRows = rep.rows.conn.filter(
    (r) =>
      (r.mode === 'o' || r.mode === 'O') && r.n === maxN && !r.skipped && r.agents_us_per_op_median !== null,
  );
  if (baseConn?.cpu_us_per_op_median && agentRows.length) {
    const budget = (baseConn.cpu_us_per_op_median * rep.target_pct) / 100;
    const took = agentRows
      .map((r) => {
        const perFlow =
          r.flows_median && r.mode === 'o'
            ? ` (${f((r.agents_cpu_s_median / r.flows_median) * 1e6, 1)} µs per flow reported)`
            : '';
        return `(${r.mode}) ${f(r.agents_us_per_op_median, 1)} µs${perFlow}`;
      })
      .join(', ');
    lines.push('');
    lines.push(
      `The ${rep.target_pct} % target's CPU budget per connection: ${rep.target_pct} % of (a)'s ` +
        `${f(baseConn.cpu_us_per_op_median, 1)} µs = ${f(budget, 2)} µs for everything Osprey does, its kernel programs ` +
        `(BPF ns per op above) included. Osprey's agents took per connection, at ${maxN} rules: ${took}.`,
    );
  }
  const bg = rep.runs.filter((r) => !r.error).map((r) => r.background_busy_cores);
  const others = rep.runs.filter((r) => !r.error).map((r) => r.others_fraction);
  lines.push('');
  lines.push(
    `Background load in the idle second before each load: median ${f(median(bg), 2)}, max ${f(bg.length ? Math.max(...bg) : null, 2)} ` +
      `busy cores of ${rep.machine.cpus}. Others' share of the machine during the loads kept: median ` +
      `${f(median(others) * 100, 0)} %, max ${f(others.length ? Math.max(...others) * 100 : null, 0)} %; ` +
      `${rep.discarded_contended_runs?.length ?? 0} contended load(s) (> ${CONTENDED_FRACTION * 100} %) were run again and left out.`,
  );
  if (rep.errors.length) {
    lines.push('');
    lines.push('Errors:');
    for (const e of rep.errors) lines.push(`- (${e.mode}) N=${e.n} ${e.load} round ${e.round}: ${e.error}`);
  }
  lines.push('');
  return lines.join('\n');
}

// ---------------------------------------------------------------------------
// entry: cleanup on every way out

runBenchmark({
  name: 'bench/netpolicy',
  main,
  cleanup,
  log,
  usage: USAGE,
  isUsage: (err) => err instanceof UsageError,
});

/**
 * Status: what the kernel offers, the programs loaded with their run
 * counts, every drop counter (non-zero ones in red), events by type, the
 * process cache, exporters and memory. Refreshed every few seconds. Parts
 * of the status this page does not know yet are shown as plain values.
 */
import type { AgentStatus } from '../src/agent/status.js';
import { get } from './api.js';
import { banner, clear, fmtBytes, fmtDateTime, fmtNum, fmtSeconds, h } from './dom.js';

const KNOWN = new Set([
  'node_name',
  'version',
  'pid',
  'started_at',
  'uptime_s',
  'config_file',
  'scope_cgroup',
  'args_max',
  'kernel',
  'bpf_stats',
  'programs',
  'records',
  'events',
  'drops',
  'policies',
  'pipeline_errors',
  'process_cache',
  'export_file',
  'export_stdout',
  'api',
  'latency',
  'memory',
]);

export function mountStatus(root: HTMLElement): () => void {
  clear(root);
  const body = h('div', { id: 'status-body' }, h('p', { class: 'muted' }, 'Loading…'));
  root.append(h('h1', null, 'Agent status'), body);
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const refresh = async () => {
    try {
      const st = await get<AgentStatus & Record<string, unknown>>('/v1/status');
      // keep open what the reader opened
      const open = new Set(
        [...body.querySelectorAll('details[open] > summary')].map((e) => e.textContent ?? ''),
      );
      body.replaceChildren(render(st));
      for (const d of body.querySelectorAll('details')) {
        if (open.has(d.querySelector('summary')?.textContent ?? '')) d.open = true;
      }
    } catch (err) {
      body.replaceChildren(banner('error', `Cannot read the status: ${(err as Error).message}`));
    }
    if (!stopped) timer = setTimeout(refresh, 3000);
  };
  void refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/** Counters of lost data, by name, in the parts of the status this page shows generically. */
const LOSS = /(ringbuf_drops|decode_errors|skipped|bus_dropped|write_errors|retention_errors|pending_drops)$/;

/** Nested values as [dotted.key, scalar] pairs; long lists are counted, not listed. */
function flatten(v: unknown, prefix: string, depth = 0): [string, string | number | boolean][] {
  if (v === null || v === undefined) return [[prefix, 'off']];
  if (typeof v !== 'object') return [[prefix, v as string | number | boolean]];
  if (Array.isArray(v)) {
    return v.length <= 4 && v.every((x) => typeof x !== 'object')
      ? [[prefix, v.join(', ')]]
      : [[prefix, `${v.length} items`]];
  }
  if (depth > 3) return [[prefix, JSON.stringify(v)]];
  return Object.entries(v as Record<string, unknown>).flatMap(([k, x]) =>
    flatten(x, prefix ? `${prefix}.${k}` : k, depth + 1),
  );
}

const kvTable = (rows: [string, string | number | Node | null | undefined][], id?: string) =>
  h(
    'table',
    { class: 'kv', ...(id ? { id } : {}) },
    h(
      'tbody',
      null,
      rows
        .filter(([, v]) => v !== undefined && v !== null && v !== '')
        .map(([k, v]) => h('tr', null, h('th', null, k), h('td', null, v instanceof Node ? v : String(v)))),
    ),
  );

function chip(name: string, on: boolean): HTMLElement {
  return h(
    'span',
    { class: on ? 'chip chip-on' : 'chip chip-off', title: on ? 'available' : 'not available' },
    name,
  );
}

function chips(m: Record<string, boolean> | undefined): HTMLElement {
  const entries = Object.entries(m ?? {}).sort(([a], [b]) => a.localeCompare(b));
  return h(
    'div',
    { class: 'chips' },
    entries.length ? entries.map(([k, v]) => chip(k, v)) : h('span', { class: 'muted' }, 'not probed'),
  );
}

function render(st: AgentStatus & Record<string, unknown>): HTMLElement {
  const k = st.kernel;
  const drops: [string, number][] = Object.entries(st.drops ?? {}).map(([n, v]) => [n, Number(v)]);
  if (st.pipeline_errors) drops.push(['pipeline_errors', st.pipeline_errors]);
  if (st.export_file) drops.push(['export_file queue', st.export_file.dropped]);
  if (st.export_stdout) drops.push(['export_stdout queue', st.export_stdout.dropped]);
  for (const p of st.policies ?? []) {
    if (p.counters) drops.push([`policy ${p.name}`, p.counters.drops]);
  }
  const extra = Object.entries(st).filter(([key]) => !KNOWN.has(key));
  // losses that parts of the agent added since this page was written report
  for (const [key, v] of extra) {
    for (const [k, n] of flatten(v, key)) {
      if (typeof n === 'number' && LOSS.test(k)) drops.push([k, n]);
    }
  }
  const totalDrops = drops.reduce((a, [, v]) => a + v, 0);
  return h(
    'div',
    { class: 'status-grid' },
    h(
      'section',
      { class: 'card' },
      h('h2', null, 'Agent'),
      kvTable([
        ['node', st.node_name],
        ['version', st.version],
        ['pid', st.pid],
        ['started', fmtDateTime(st.started_at)],
        ['uptime', fmtSeconds(st.uptime_s)],
        ['watching', st.scope_cgroup ?? 'all processes'],
        ['config', st.config_file],
        ['API', `${st.api?.socket} (${st.api?.clients} stream clients)`],
        ['memory', `rss ${fmtBytes(st.memory?.rss_bytes)}, peak ${fmtBytes(st.memory?.peak_rss_bytes)}`],
      ]),
    ),
    h(
      'section',
      { class: 'card', id: 'status-kernel' },
      h('h2', null, 'Kernel'),
      kvTable([
        ['release', k?.release],
        [
          'features',
          h(
            'div',
            { class: 'chips' },
            chip('BTF', k?.btf ?? false),
            chip('kprobes', k?.kprobes ?? false),
            chip('uprobes', k?.uprobes ?? false),
            chip('BPF LSM', k?.bpf_lsm ?? false),
          ),
        ],
      ]),
      h('details', null, h('summary', null, 'Program types'), chips(k?.prog_types)),
      h('details', null, h('summary', null, 'Map types'), chips(k?.map_types)),
      h('details', null, h('summary', null, 'Helpers'), chips(k?.helpers)),
    ),
    h(
      'section',
      { class: 'card', id: 'status-drops' },
      h('h2', null, 'Drops', h('span', { class: totalDrops ? 'count bad' : 'count ok' }, fmtNum(totalDrops))),
      h(
        'table',
        { class: 'kv' },
        h(
          'tbody',
          null,
          drops.map(([n, v]) =>
            h(
              'tr',
              { class: v ? 'bad' : '' },
              h('th', null, n.replaceAll('_', ' ')),
              h('td', { class: 'num' }, fmtNum(v)),
            ),
          ),
        ),
      ),
    ),
    h(
      'section',
      { class: 'card' },
      h('h2', null, 'Events'),
      kvTable([
        ['total', fmtNum(st.events?.total)],
        ...Object.entries(st.events?.by_type ?? {})
          .sort()
          .map(([t, n]): [string, string] => [t, fmtNum(n)]),
        ['kernel records', `${fmtNum(st.records?.total)} in ${fmtNum(st.records?.batches)} batches`],
        [
          'exec latency',
          st.latency?.count
            ? `p50 ${st.latency.p50_ms} ms, p99 ${st.latency.p99_ms} ms, max ${st.latency.max_ms} ms`
            : 'no samples yet',
        ],
        [
          'process cache',
          st.process_cache
            ? `${fmtNum(st.process_cache.size)} (${fmtNum(st.process_cache.live)} live), ${fmtNum(st.process_cache.evictions)} evicted`
            : undefined,
        ],
        [
          'export file',
          st.export_file
            ? `${st.export_file.path}: ${fmtNum(st.export_file.events_written)} events, ${fmtBytes(st.export_file.size_bytes)}`
            : 'off',
        ],
      ]),
    ),
    h(
      'section',
      { class: 'card wide', id: 'status-programs' },
      h('h2', null, `Programs loaded (${st.programs?.length ?? 0})`),
      st.bpf_stats
        ? null
        : h('p', { class: 'muted' }, 'Runs are not counted: start the agent with --bpf-stats to count them.'),
      h(
        'table',
        { class: 'grid' },
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            ['Program', 'Hook', 'Policy', 'ID', 'Runs', 'Avg run', 'Total run time'].map((t) =>
              h('th', null, t),
            ),
          ),
        ),
        h(
          'tbody',
          null,
          (st.programs ?? []).map((p) =>
            h(
              'tr',
              null,
              h('td', null, p.name),
              h('td', { class: 'mono' }, p.hook),
              h('td', null, p.policy ?? ''),
              h('td', { class: 'num' }, p.id),
              h('td', { class: 'num' }, st.bpf_stats ? fmtNum(p.run_count) : '-'),
              h(
                'td',
                { class: 'num' },
                p.run_count ? `${fmtNum(Math.round(p.run_time_ns / p.run_count))} ns` : '-',
              ),
              h('td', { class: 'num' }, st.bpf_stats ? `${(p.run_time_ns / 1e6).toFixed(2)} ms` : '-'),
            ),
          ),
        ),
      ),
    ),
    extra.map(([key, v]) =>
      h(
        'section',
        { class: 'card', 'data-part': key },
        h('h2', null, key.replaceAll('_', ' ')),
        v === null || v === undefined
          ? h('p', { class: 'muted' }, 'off')
          : kvTable(flatten(v, '').map(([k, x]): [string, string] => [k.replaceAll('_', ' '), String(x)])),
      ),
    ),
  );
}

/**
 * The process tree explorer: find a process by binary or pid (or come from
 * any event), then see its ancestors, its children and grandchildren, and
 * what each of them did — execs, exits, syscalls and tracepoints the
 * policies caught, enforcement, network flows — on one timeline.
 *
 * The agent's store (GET /v1/processes/:exec_id, /v1/events/history) knows
 * the past; the live index (events since this page was opened) fills in
 * what the store has not written yet, and stands in when there is no store.
 */
import { ApiError, get, hasEndpoint, query } from './api.js';
import { banner, baseName, clear, fmtDateTime, fmtOffset, fmtTime, h } from './dom.js';
import { onLive, processIndex, recentFlows } from './live.js';
import {
  describeEvent,
  type ExportEvent,
  endpointName,
  enforcementClass,
  eventKey,
  eventProcess,
  eventTime,
  eventType,
  flowPorts,
  type HubbleFlow,
  type ProcNode,
  processMatcher,
  toFlow,
  toProcNode,
} from './model.js';

/** descendants whose own events are fetched from the store, at most */
const MAX_DESCENDANT_FETCHES = 40;

interface Tree {
  process: ProcNode;
  ancestors: ProcNode[];
  descendants: (ProcNode & { depth: number })[];
  /** the events of the process and of its descendants */
  events: ExportEvent[];
  sources: string[];
}

export function mountProcesses(root: HTMLElement, params: URLSearchParams, rest: string[]): () => void {
  const execId = rest[0] ? decodeURIComponent(rest[0]) : undefined;
  const cleanups: (() => void)[] = [];
  clear(root);
  root.append(h('h1', null, 'Process tree'));

  const q = params.get('q') ?? '';
  const input = h('input', {
    id: 'proc-search',
    type: 'search',
    placeholder: 'binary regex or pid, e.g. sleep or 4242',
    value: q,
  });
  const form = h(
    'form',
    {
      class: 'filters',
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        location.hash = `#/processes${query({ q: input.value.trim() })}`;
      },
    },
    h('label', null, 'Find a process ', input),
    h('button', { type: 'submit', id: 'proc-search-go' }, 'Search'),
  );
  root.append(form);
  const body = h('div', { class: 'proc-body' });
  root.append(body);

  if (execId) {
    const ctl = new AbortController();
    cleanups.push(() => ctl.abort());
    showProcess(body, execId, ctl.signal, cleanups);
  } else {
    const ctl = new AbortController();
    cleanups.push(() => ctl.abort());
    showSearch(body, q, ctl.signal, cleanups);
  }
  return () => {
    for (const c of cleanups) c();
  };
}

// ---------------------------------------------------------------------------
// search

async function searchStore(q: string, signal: AbortSignal): Promise<ProcNode[] | undefined> {
  if (!(await hasEndpoint('/v1/events/history?limit=1'))) return undefined;
  const isPid = /^\d+$/.test(q.trim());
  // the store indexes binaries; a pid is an allow filter over the newest execs
  const r = await get<unknown>(
    `/v1/events/history${query({
      types: 'process_exec',
      ...(isPid
        ? { allow: JSON.stringify({ pid: [Number(q.trim())] }), limit: 5000 }
        : { binary: q.trim(), limit: 200 }),
    })}`,
    signal,
  );
  const evs = (Array.isArray(r) ? r : ((r as { events?: unknown[] })?.events ?? [])) as ExportEvent[];
  return evs.flatMap((ev) => {
    const n = toProcNode(eventProcess(ev));
    return n ? [n] : [];
  });
}

function showSearch(body: HTMLElement, q: string, signal: AbortSignal, cleanups: (() => void)[]): void {
  const results = h('div', { id: 'proc-results' });
  const notices = h('div', { class: 'notices' });
  body.append(notices, results);
  let match: (n: ProcNode) => boolean;
  try {
    match = processMatcher(q);
  } catch (err) {
    notices.append(banner('error', (err as Error).message));
    return;
  }
  let stored: ProcNode[] = [];
  let lastSig: string | undefined;
  const render = () => {
    const byId = new Map<string, ProcNode & { from: string }>();
    for (const n of stored) if (match(n)) byId.set(n.exec_id, { ...n, from: 'store' });
    for (const n of processIndex.search(q, 200)) {
      const had = byId.get(n.exec_id);
      byId.set(n.exec_id, { ...had, ...n, from: had ? 'store, live' : 'live' });
    }
    const list = [...byId.values()].sort((a, b) => ((a.start_time ?? '') < (b.start_time ?? '') ? 1 : -1));
    const sig = list.map((n) => `${n.exec_id}:${n.from}:${exitText(n)}`).join('|');
    if (sig === lastSig) return;
    lastSig = sig;
    results.replaceChildren(
      list.length === 0
        ? h(
            'p',
            { class: 'muted' },
            q
              ? `No process matches "${q}" yet. Processes appear here as soon as the agent reports them.`
              : 'No processes seen yet.',
          )
        : h(
            'table',
            { class: 'grid proc-results' },
            h(
              'thead',
              null,
              h(
                'tr',
                null,
                h('th', null, 'PID'),
                h('th', null, 'Binary'),
                h('th', null, 'Arguments'),
                h('th', null, 'Started'),
                h('th', null, 'Exit'),
                h('th', null, 'Seen in'),
              ),
            ),
            h(
              'tbody',
              null,
              list
                .slice(0, 200)
                .map((n) =>
                  h(
                    'tr',
                    { class: 'proc-row', 'data-exec-id': n.exec_id },
                    h('td', { class: 'num' }, n.pid),
                    h(
                      'td',
                      { class: 'bin' },
                      h('a', { href: `#/processes/${encodeURIComponent(n.exec_id)}` }, n.binary || '?'),
                    ),
                    h('td', { class: 'args' }, n.arguments),
                    h('td', { class: 'time' }, fmtDateTime(n.start_time)),
                    h('td', null, exitText(n)),
                    h('td', { class: 'muted' }, n.from),
                  ),
                ),
            ),
          ),
    );
  };
  render();
  cleanups.push(onLive(render));
  searchStore(q, signal)
    .then((r) => {
      if (r === undefined) {
        notices.append(
          banner(
            'info',
            'This agent has no event store: the search covers processes seen since this page opened.',
          ),
        );
        return;
      }
      stored = r;
      render();
    })
    .catch((err: Error) => {
      if (err.name !== 'AbortError') notices.append(banner('warn', `Store search failed: ${err.message}`));
    });
}

function exitText(n: ProcNode): string {
  if (n.exit_signal) return n.exit_signal;
  if (n.exit_status !== undefined) return `status ${n.exit_status}`;
  if (n.exit_time) return 'exited';
  return 'running';
}

// ---------------------------------------------------------------------------
// one process

/** The store's view, or undefined when the agent has no process endpoint. */
async function storeTree(execId: string, signal: AbortSignal): Promise<Tree | 'unknown' | undefined> {
  let r: unknown;
  try {
    r = await get<unknown>(`/v1/processes/${encodeURIComponent(execId)}?events=500`, signal);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      // the not-found handler names the missing endpoint; a known endpoint names the process
      return /^no endpoint/.test(err.message) ? undefined : 'unknown';
    }
    if (err instanceof ApiError && (err.status === 503 || err.status === 501)) return undefined;
    throw err;
  }
  const o = (r ?? {}) as Record<string, unknown>;
  const process = toProcNode(o['process']);
  if (!process) return 'unknown';
  const list = (k: string) => (Array.isArray(o[k]) ? (o[k] as unknown[]) : []);
  const ancestors = list('ancestors').flatMap((x) => toProcNode(x) ?? []);
  const descendants = (list('descendants').length ? list('descendants') : list('children')).flatMap((x) => {
    const n = toProcNode(x);
    const depth = Number((x as { depth?: unknown }).depth ?? 1);
    return n ? [{ ...n, depth }] : [];
  });
  return { process, ancestors, descendants, events: list('events') as ExportEvent[], sources: ['store'] };
}

/** The live index's view, or undefined when it does not know the process. */
function liveTree(execId: string): Tree | undefined {
  const process = processIndex.get(execId);
  if (!process) return undefined;
  const descendants = processIndex.descendants(execId);
  const events = [execId, ...descendants.map((d) => d.exec_id)].flatMap((id) => processIndex.events(id));
  return { process, ancestors: processIndex.ancestors(execId), descendants, events, sources: ['live'] };
}

/** The store's tree, completed by what the live index knows and the store does not (yet). */
function merge(a: Tree | undefined, b: Tree | undefined): Tree | undefined {
  if (!a) return b;
  if (!b) return a;
  const process = { ...b.process, ...a.process };
  const anc = a.ancestors.length >= b.ancestors.length ? a.ancestors : b.ancestors;
  const desc = new Map(a.descendants.map((d) => [d.exec_id, d]));
  for (const d of b.descendants) if (!desc.has(d.exec_id)) desc.set(d.exec_id, d);
  const evs = new Map(a.events.map((e) => [eventKey(e), e]));
  for (const e of b.events) if (!evs.has(eventKey(e))) evs.set(eventKey(e), e);
  return {
    process,
    ancestors: anc,
    descendants: [...desc.values()],
    events: [...evs.values()],
    sources: [...a.sources, ...b.sources],
  };
}

/** The store's events of each descendant, a bounded number of them, a few requests at a time. */
async function descendantEvents(tree: Tree, signal: AbortSignal): Promise<ExportEvent[]> {
  const ids = tree.descendants.slice(0, MAX_DESCENDANT_FETCHES).map((d) => d.exec_id);
  const out: ExportEvent[] = [];
  let next = 0;
  const worker = async () => {
    while (next < ids.length && !signal.aborted) {
      const id = ids[next++]!;
      const t = await storeTree(id, signal).catch(() => undefined);
      if (t && t !== 'unknown') out.push(...t.events);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return out;
}

function showProcess(body: HTMLElement, execId: string, signal: AbortSignal, cleanups: (() => void)[]): void {
  const notices = h('div', { class: 'notices' });
  const view = h('div', { class: 'proc-view', id: 'proc-view' }, h('p', { class: 'muted' }, 'Loading…'));
  body.append(notices, view);
  let stored: Tree | undefined;
  let storedExtra: ExportEvent[] = [];
  let withDescendants = true;
  let lastSig: string | undefined;

  /** Draw again when something changed: new events arrive every moment on a busy host. */
  const render = (force = false) => {
    const tree = merge(stored, liveTree(execId));
    const sig = tree
      ? [
          tree.ancestors.length,
          tree.descendants.map((d) => `${d.exec_id}${d.exit_time ?? ''}`).join(','),
          tree.events.length,
          storedExtra.length,
          tree.process.exit_time ?? '',
          recentFlows.length,
          withDescendants,
        ].join('|')
      : 'none';
    if (!force && sig === lastSig) return;
    lastSig = sig;
    if (!tree) {
      view.replaceChildren(
        h(
          'p',
          { class: 'muted' },
          'The agent does not know this process (it may have been forgotten, or not reported yet).',
        ),
      );
      return;
    }
    if (storedExtra.length) tree.events = merge(tree, { ...tree, events: storedExtra })!.events;
    view.replaceChildren(
      h(
        'div',
        { class: 'proc-grid' },
        h('section', { class: 'card tree-card' }, h('h2', null, 'Ancestry and children'), treeList(tree)),
        h('section', { class: 'card' }, h('h2', null, 'Process'), procCard(tree.process)),
      ),
      h(
        'section',
        { class: 'card timeline-card' },
        h(
          'div',
          { class: 'card-head' },
          h('h2', null, 'Activity'),
          h(
            'label',
            { class: 'inline' },
            h('input', {
              type: 'checkbox',
              id: 'with-descendants',
              checked: withDescendants,
              onchange: (ev: Event) => {
                withDescendants = (ev.target as HTMLInputElement).checked;
                render(true);
              },
            }),
            ' include children and their descendants',
          ),
          h('span', { class: 'muted' }, `from ${[...new Set(tree.sources)].join(' and ')}`),
        ),
        timeline(tree, withDescendants),
      ),
    );
  };

  void (async () => {
    try {
      let t = await storeTree(execId, signal);
      // the store writes in batches: a process seen a moment ago may not be there yet
      for (let i = 0; i < 3 && t === 'unknown' && !signal.aborted; i++) {
        await new Promise((r) => setTimeout(r, 1000));
        t = await storeTree(execId, signal);
      }
      if (t === undefined) {
        notices.append(
          banner(
            'info',
            'This agent has no process endpoint (no event store): showing what was seen since this page opened.',
          ),
        );
      } else if (t !== 'unknown') {
        stored = t;
        render();
        storedExtra = await descendantEvents(t, signal);
      }
    } catch (err) {
      if ((err as Error).name === 'AbortError') return;
      notices.append(banner('warn', `Could not ask the store: ${(err as Error).message}`));
    }
    render();
  })();
  cleanups.push(onLive(() => render()));
  render();
}

function procLink(n: ProcNode, current: boolean): HTMLElement {
  return h(
    'a',
    {
      href: `#/processes/${encodeURIComponent(n.exec_id)}`,
      class: current ? 'proc current' : 'proc',
      title: `${n.binary} ${n.arguments}\nexec_id ${n.exec_id}`,
    },
    h('span', { class: 'pname' }, baseName(n.binary) || `[pid ${n.pid}]`),
    h('span', { class: 'pid' }, ` ${n.pid}`),
    n.arguments ? h('span', { class: 'pargs' }, ` ${n.arguments}`) : null,
  );
}

function treeList(tree: Tree): HTMLElement {
  const ul = h('ul', { class: 'ptree', id: 'proc-tree' });
  const line = (n: ProcNode, depth: number, role: string) => {
    const li = h(
      'li',
      { class: `ptree-row ${role}`, 'data-role': role, 'data-exec-id': n.exec_id },
      procLink(n, role === 'self'),
      h(
        'span',
        { class: `exit ${n.exit_signal ? 'bad' : ''}` },
        n.exit_time || n.exit_signal ? exitText(n) : '',
      ),
    );
    li.style.paddingLeft = `${0.4 + depth * 1.2}rem`;
    ul.append(li);
  };
  const anc = [...tree.ancestors].reverse();
  anc.forEach((a, i) => {
    line(a, i, 'ancestor');
  });
  line(tree.process, anc.length, 'self');
  // descendants in tree order: each under its parent
  const kids = new Map<string, ProcNode[]>();
  for (const d of tree.descendants) {
    const p = d.parent_exec_id ?? tree.process.exec_id;
    const l = kids.get(p) ?? [];
    l.push(d);
    kids.set(p, l);
  }
  const seen = new Set<string>();
  const walk = (id: string, depth: number) => {
    const list = (kids.get(id) ?? []).sort((a, b) => ((a.start_time ?? '') < (b.start_time ?? '') ? -1 : 1));
    for (const c of list) {
      if (seen.has(c.exec_id)) continue;
      seen.add(c.exec_id);
      line(c, depth, 'descendant');
      walk(c.exec_id, depth + 1);
    }
  };
  walk(tree.process.exec_id, anc.length + 1);
  if (tree.descendants.length === 0) {
    ul.append(h('li', { class: 'muted ptree-none' }, 'no children seen'));
  }
  return ul;
}

function procCard(n: ProcNode): HTMLElement {
  const p = n.process ?? {};
  const row = (k: string, v: string | number | undefined | null) =>
    v === undefined || v === null || v === ''
      ? null
      : h('tr', null, h('th', null, k), h('td', null, String(v)));
  const creds = p.process_credentials;
  const w = p.workload;
  return h(
    'table',
    { class: 'kv', id: 'proc-card' },
    h(
      'tbody',
      null,
      row('binary', n.binary),
      row('arguments', n.arguments),
      row('pid', n.pid),
      row('ppid', p.ppid),
      row('uid', p.uid),
      creds && (creds.euid !== creds.uid || creds.egid !== creds.gid)
        ? row('credentials', `uid ${creds.uid} euid ${creds.euid} gid ${creds.gid} egid ${creds.egid}`)
        : null,
      row('cwd', p.cwd),
      row('started', fmtDateTime(n.start_time)),
      row(
        'ended',
        n.exit_time ? `${fmtDateTime(n.exit_time)} (${exitText(n)})` : 'running or not seen ending',
      ),
      row('flags', p.flags),
      row('interpreter', p.interpreter),
      row('workload', w ? `${w.cgroup_path}${w.labels ? ` ${JSON.stringify(w.labels)}` : ''}` : undefined),
      p.cap?.effective?.length
        ? h(
            'tr',
            null,
            h('th', null, 'capabilities'),
            h(
              'td',
              null,
              h(
                'details',
                null,
                h('summary', null, `${p.cap.effective.length} effective`),
                h('span', { class: 'mono' }, p.cap.effective.join(' ')),
              ),
            ),
          )
        : null,
      row('exec_id', n.exec_id),
    ),
  );
}

interface TimelineRow {
  time: string;
  pid: number;
  binary: string;
  kind: string;
  verb: string;
  detail: string;
  enforcement?: string;
  severity: string;
}

/** One flow's identity on the timeline, whichever way it came (the store or the live stream). */
const flowKey = (f: HubbleFlow) => `flow|${f.time}|${f.osprey?.socket_cookie ?? ''}|${f.osprey?.event ?? ''}`;

function flowRow(f: HubbleFlow, pid: number, binary: string): TimelineRow {
  const p = flowPorts(f);
  const dropped = f.verdict === 'DROPPED';
  return {
    time: f.time,
    pid,
    binary,
    kind: 'flow',
    verb: `${p.proto} ${f.osprey.event.toLowerCase()}`,
    detail: `${endpointName(f.source, f.IP.source)}:${p.src} → ${endpointName(f.destination, f.IP.destination)}:${p.dst} ${f.verdict}`,
    ...(dropped ? { enforcement: 'DROPPED' } : {}),
    severity: dropped ? 'danger' : 'info',
  };
}

/**
 * The flows of these processes: a flow names its process (osprey.exec_id)
 * when the agent knew it; one that does not is matched by its pid while the
 * processes lived (from..to).
 */
function flowRows(
  flows: readonly HubbleFlow[],
  nodes: readonly ProcNode[],
  from: number,
  to: number,
  seen: Set<string>,
): TimelineRow[] {
  const byExec = new Map(nodes.map((n) => [n.exec_id, n]));
  const byPid = new Map(nodes.map((n) => [n.pid, n]));
  const out: TimelineRow[] = [];
  for (const f of flows) {
    const exec = f.osprey?.exec_id;
    let node: ProcNode | undefined;
    if (exec !== undefined) {
      node = byExec.get(exec);
    } else {
      const pid = f.osprey?.pid;
      const t = Date.parse(f.time);
      if (pid !== undefined && t >= from && t <= to) node = byPid.get(pid);
    }
    if (!node) continue;
    const k = flowKey(f);
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(flowRow(f, node.pid, node.binary ?? ''));
  }
  return out;
}

function timeline(tree: Tree, withDescendants: boolean): HTMLElement {
  const ids = new Set([tree.process.exec_id]);
  if (withDescendants) for (const d of tree.descendants) ids.add(d.exec_id);
  const rows: TimelineRow[] = [];
  const seen = new Set<string>();
  const storedFlows: HubbleFlow[] = [];
  for (const ev of tree.events) {
    if (eventType(ev) === 'flow') {
      const f = toFlow(ev);
      if (f) storedFlows.push(f);
      continue;
    }
    const p = eventProcess(ev);
    if (!p?.exec_id || !ids.has(p.exec_id)) continue;
    const k = eventKey(ev);
    if (seen.has(k)) continue;
    seen.add(k);
    const d = describeEvent(ev);
    rows.push({
      time: eventTime(ev),
      pid: p.pid,
      binary: p.binary ?? '',
      kind: eventType(ev).replace('process_', ''),
      verb: d.verb,
      detail: d.detail,
      ...(d.enforcement ? { enforcement: d.enforcement } : {}),
      severity: d.severity,
    });
  }
  const nodes = [tree.process, ...(withDescendants ? tree.descendants : [])];
  const from = Date.parse(tree.process.start_time ?? '') || 0;
  const ends = nodes.map((n) => (n.exit_time ? Date.parse(n.exit_time) : Number.POSITIVE_INFINITY));
  // the store's flows first, then the live ones it has not written yet
  const flows = [...storedFlows, ...(recentFlows as HubbleFlow[])];
  rows.push(...flowRows(flows, nodes, from - 1000, Math.max(...ends) + 1000, seen));
  rows.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  if (rows.length === 0) return h('p', { class: 'muted' }, 'No events of this process yet.');
  const base = tree.process.start_time ?? rows[0]!.time;
  return h(
    'table',
    { class: 'grid timeline', id: 'proc-events' },
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        h('th', null, 'Time'),
        h('th', null, 'After start'),
        h('th', null, 'PID'),
        h('th', null, 'Process'),
        h('th', null, 'Event'),
        h('th', null, 'What'),
      ),
    ),
    h(
      'tbody',
      null,
      rows.map((r) =>
        h(
          'tr',
          { class: `sev-${r.severity}`, 'data-kind': r.kind },
          h('td', { class: 'time', title: r.time }, fmtTime(r.time)),
          h('td', { class: 'num muted' }, fmtOffset(r.time, base)),
          h('td', { class: 'num' }, r.pid),
          h('td', { class: 'bin' }, baseName(r.binary)),
          h('td', null, h('span', { class: `tag tag-${r.kind}` }, r.kind)),
          h(
            'td',
            { class: 'what' },
            h('b', null, r.verb),
            ' ',
            r.detail,
            r.enforcement ? h('span', { class: enforcementClass(r.enforcement) }, r.enforcement) : null,
          ),
        ),
      ),
    ),
  );
}

/**
 * Live events: the agent's stream with its server-side filters (binary
 * regex, types, policy) plus a pid filter, newest first. Pausing stops the
 * table, not the stream: what arrives meanwhile waits in a bounded buffer
 * and is shown on resume, with a count of anything the buffer let go.
 */
import { type ApiError, followLines, get, hasEndpoint, query, type StreamState } from './api.js';
import { banner, clear, fmtNum, fmtTime, h } from './dom.js';
import {
  describeEvent,
  type ExportEvent,
  enforcementClass,
  eventPolicy,
  eventProcess,
  eventTime,
  eventType,
  PauseBuffer,
} from './model.js';

const KNOWN_TYPES = ['process_exec', 'process_exit', 'process_kprobe', 'process_tracepoint', 'flow'];
/** rows kept in the table; older ones leave it (they are still in the store) */
const MAX_ROWS = 1000;
/** events kept while paused */
export const PAUSE_CAPACITY = 10_000;
const HISTORY_ROWS = 200;

interface Filters {
  binary: string;
  args: string;
  parent: string;
  types: string[];
  policy: string;
  pid: string;
  deny: string;
}

function filtersFrom(params: URLSearchParams): Filters {
  return {
    binary: params.get('binary') ?? '',
    args: params.get('args') ?? '',
    parent: params.get('parent') ?? '',
    types: (params.get('types') ?? '').split(',').filter(Boolean),
    policy: params.get('policy') ?? '',
    pid: params.get('pid') ?? '',
    deny: params.get('deny') ?? '',
  };
}

/**
 * The agent's query parameters for these filters: binary, types and policy
 * as they are; pid, arguments and parent binary as one Tetragon allow filter
 * (its fields AND); the deny list as typed.
 */
function serverParams(f: Filters): Record<string, string | undefined> {
  const allow: Record<string, unknown> = {};
  if (/^\d+$/.test(f.pid)) allow['pid'] = [Number(f.pid)];
  if (f.args) allow['arguments_regex'] = [f.args];
  if (f.parent) allow['parent_binary_regex'] = [f.parent];
  return {
    binary: f.binary,
    types: f.types.join(','),
    policy: f.policy,
    allow: Object.keys(allow).length ? JSON.stringify(allow) : undefined,
    deny: f.deny,
  };
}

export function mountEvents(root: HTMLElement, params: URLSearchParams): () => void {
  const f = filtersFrom(params);
  const pid = /^\d+$/.test(f.pid) ? Number(f.pid) : undefined;

  const input = (id: string, value: string, placeholder: string, title: string, size?: number) =>
    h('input', { id, type: 'search', value, placeholder, title, ...(size ? { size } : {}) });
  const binaryInput = input(
    'f-binary',
    f.binary,
    'e.g. ^/usr/bin/(curl|wget)$',
    'regular expression on the binary',
  );
  const argsInput = input('f-args', f.args, 'e.g. --password', 'regular expression on the arguments', 14);
  const parentInput = input(
    'f-parent',
    f.parent,
    'e.g. /bash$',
    "regular expression on the parent's binary",
    14,
  );
  const denyInput = input(
    'f-deny',
    f.deny,
    '{"binary_regex": ["^/usr/bin/sleep$"]}',
    'Tetragon deny filters, JSON: matching events are left out',
    34,
  );
  const pidInput = h('input', { id: 'f-pid', type: 'text', inputmode: 'numeric', value: f.pid, size: 7 });
  const policySelect = h('select', { id: 'f-policy' }, h('option', { value: '' }, 'any'));
  if (f.policy) policySelect.append(h('option', { value: f.policy }, f.policy));
  policySelect.value = f.policy;
  const typeBoxes = KNOWN_TYPES.map((t) =>
    h('input', { type: 'checkbox', name: 'types', value: t, checked: f.types.includes(t) }),
  );
  const apply = (ev: Event) => {
    ev.preventDefault();
    const types = typeBoxes.filter((b) => b.checked).map((b) => b.value);
    location.hash = `#/events${query({
      binary: binaryInput.value.trim(),
      args: argsInput.value.trim(),
      parent: parentInput.value.trim(),
      types: types.length === KNOWN_TYPES.length ? '' : types.join(','),
      policy: policySelect.value,
      pid: pidInput.value.trim(),
      deny: denyInput.value.trim(),
    })}`;
  };
  const form = h(
    'form',
    { class: 'filters', onsubmit: apply },
    h('label', null, 'Binary ', binaryInput),
    h('label', null, 'Args ', argsInput),
    h('label', null, 'Parent ', parentInput),
    h('label', null, 'PID ', pidInput),
    h('label', null, 'Policy ', policySelect),
    h(
      'fieldset',
      { class: 'types' },
      h('legend', null, 'Types'),
      typeBoxes.map((b) => h('label', null, b, b.value.replace('process_', ''))),
    ),
    h('label', null, 'Deny ', denyInput),
    h('button', { type: 'submit', id: 'f-apply', class: 'primary' }, 'Apply'),
    h('a', { href: '#/events', class: 'reset' }, 'reset'),
  );

  // policies for the select, best effort
  void get<{ policies: { name: string }[] }>('/v1/policies')
    .then((r) => {
      for (const p of r.policies) {
        if (p.name !== f.policy) policySelect.append(h('option', { value: p.name }, p.name));
      }
    })
    .catch(() => {});

  const pauseBtn = h('button', { type: 'button', id: 'pause', class: 'primary' }, 'Pause');
  const clearBtn = h('button', { type: 'button', id: 'clear' }, 'Clear');
  const streamInfo = h('span', { class: 'stream-state', id: 'stream-state' }, 'connecting…');
  const bufferInfo = h('span', { class: 'buffer-state', id: 'buffer-state' });
  const notices = h('div', { class: 'notices' });
  const tbody = h('tbody', { id: 'events-body' });
  const empty = h('tr', { class: 'empty' }, h('td', { colspan: 6 }, 'Waiting for events…'));
  tbody.append(empty);
  const table = h(
    'table',
    { class: 'grid events-table' },
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        h('th', null, 'Time'),
        h('th', null, 'Type'),
        h('th', null, 'PID'),
        h('th', null, 'Process'),
        h('th', null, 'What'),
        h('th', null, 'Policy'),
      ),
    ),
    tbody,
  );

  clear(root);
  root.append(
    h('h1', null, 'Live events'),
    form,
    h('div', { class: 'toolbar' }, pauseBtn, clearBtn, streamInfo, bufferInfo),
    notices,
    h('div', { class: 'table-wrap' }, table),
  );

  let shown = 0;
  let received = 0;
  let paused = false;
  const buffer = new PauseBuffer<ExportEvent>(PAUSE_CAPACITY);
  let pending: ExportEvent[] = [];
  let flushTimer: ReturnType<typeof setTimeout> | undefined;
  let state: StreamState = { state: 'connecting' };

  const keep = (ev: ExportEvent) => pid === undefined || eventProcess(ev)?.pid === pid;

  const updateInfo = () => {
    const s =
      state.state === 'live'
        ? 'live'
        : state.state === 'reconnecting'
          ? `reconnecting (${state.reason})`
          : state.state === 'refused'
            ? 'stopped'
            : state.state;
    streamInfo.textContent = `${s} · ${fmtNum(received)} received · ${fmtNum(shown)} shown`;
    streamInfo.className = `stream-state state-${state.state}`;
    if (paused) {
      bufferInfo.textContent = `paused: ${fmtNum(buffer.size)} buffered, ${fmtNum(buffer.dropped)} dropped (buffer holds ${fmtNum(PAUSE_CAPACITY)})`;
      bufferInfo.hidden = false;
    } else {
      bufferInfo.hidden = true;
    }
  };

  const row = (ev: ExportEvent): HTMLTableRowElement => {
    const d = describeEvent(ev);
    const p = eventProcess(ev);
    const type = eventType(ev);
    const tr = h(
      'tr',
      { class: `ev sev-${d.severity}`, 'data-type': type, 'data-pid': p?.pid ?? '' },
      h('td', { class: 'time', title: eventTime(ev) }, fmtTime(eventTime(ev))),
      h(
        'td',
        null,
        h('span', { class: `tag tag-${type.replace('process_', '')}` }, type.replace('process_', '')),
      ),
      h('td', { class: 'num' }, p?.pid ?? ''),
      h('td', { class: 'bin', title: p?.binary ?? '' }, p?.binary ?? ''),
      h(
        'td',
        { class: 'what' },
        h('b', null, d.verb),
        ' ',
        d.detail,
        d.enforcement ? h('span', { class: enforcementClass(d.enforcement) }, d.enforcement) : null,
      ),
      h('td', null, eventPolicy(ev) ?? ''),
    );
    tr.addEventListener('click', () => toggleDetail(tr, ev));
    return tr;
  };

  const toggleDetail = (tr: HTMLTableRowElement, ev: ExportEvent) => {
    const next = tr.nextElementSibling;
    if (next?.classList.contains('detail')) {
      next.remove();
      return;
    }
    const p = eventProcess(ev);
    tr.after(
      h(
        'tr',
        { class: 'detail' },
        h(
          'td',
          { colspan: 6 },
          p?.exec_id
            ? h(
                'a',
                { href: `#/processes/${encodeURIComponent(p.exec_id)}`, class: 'button' },
                'Open in process tree',
              )
            : null,
          h('pre', { class: 'json' }, JSON.stringify(ev, null, 2)),
        ),
      ),
    );
  };

  const marker = (text: string) => h('tr', { class: 'marker' }, h('td', { colspan: 6 }, text));

  /** Put events (oldest first) at the top of the table, newest first. */
  const show = (evs: ExportEvent[]) => {
    if (evs.length === 0) return;
    if (empty.isConnected) empty.remove();
    const frag = document.createDocumentFragment();
    const from = Math.max(0, evs.length - MAX_ROWS);
    for (let i = evs.length - 1; i >= from; i--) frag.append(row(evs[i]!));
    tbody.prepend(frag);
    shown += evs.length;
    let rows = tbody.querySelectorAll('tr.ev').length;
    while (rows > MAX_ROWS && tbody.lastElementChild) {
      const last = tbody.lastElementChild;
      if (last.classList.contains('ev')) rows--;
      last.remove();
    }
  };

  const flush = () => {
    flushTimer = undefined;
    const evs = pending;
    pending = [];
    show(evs);
    updateInfo();
  };

  const onEvents = (items: unknown[]) => {
    const evs = (items as ExportEvent[]).filter(keep);
    received += evs.length;
    if (paused) {
      buffer.push(...evs);
      updateInfo();
      return;
    }
    pending.push(...evs);
    flushTimer ??= setTimeout(flush, 100);
  };

  pauseBtn.addEventListener('click', () => {
    paused = !paused;
    pauseBtn.textContent = paused ? 'Resume' : 'Pause';
    pauseBtn.classList.toggle('paused', paused);
    if (!paused) {
      const { items, dropped } = buffer.drain();
      flush();
      if (dropped > 0) {
        tbody.prepend(
          marker(`${fmtNum(dropped)} events arrived while paused and were not kept (buffer full)`),
        );
      }
      show(items);
    }
    updateInfo();
  });
  clearBtn.addEventListener('click', () => {
    tbody.replaceChildren(empty);
    shown = 0;
    updateInfo();
  });

  const streamPath = `/v1/events${query(serverParams(f))}`;
  const stream = followLines(streamPath, onEvents, (s) => {
    state = s;
    if (s.state === 'refused') {
      notices.replaceChildren(banner('error', `The agent refused these filters: ${s.error.message}`));
    } else if (s.state === 'missing') {
      notices.replaceChildren(banner('error', 'This agent has no event stream (/v1/events).'));
    }
    updateInfo();
  });

  // the recent past, so the page does not start empty (needs the store)
  const history = new AbortController();
  void hasEndpoint('/v1/events/history?limit=1').then(async (ok) => {
    if (!ok) {
      notices.append(
        banner(
          'info',
          'History is not available from this agent (no event store): showing events from now on.',
        ),
      );
      return;
    }
    try {
      const r = await get<unknown>(
        `/v1/events/history${query({ ...serverParams(f), limit: HISTORY_ROWS })}`,
        history.signal,
      );
      const evs = (Array.isArray(r) ? r : ((r as { events?: unknown[] })?.events ?? [])) as ExportEvent[];
      const old = evs.filter(keep).sort((a, b) => (eventTime(a) < eventTime(b) ? -1 : 1));
      if (old.length === 0) return;
      // below whatever the stream already showed
      const frag = document.createDocumentFragment();
      frag.append(marker(`${fmtNum(old.length)} earlier events from the store`));
      for (let i = old.length - 1; i >= 0; i--) frag.append(row(old[i]!));
      if (empty.isConnected) empty.remove();
      tbody.append(frag);
    } catch (err) {
      if ((err as Error).name === 'AbortError') return;
      notices.append(banner('warn', `Could not load history: ${(err as ApiError).message}`));
    }
  });

  updateInfo();
  return () => {
    stream.close();
    history.abort();
    clearTimeout(flushTimer);
  };
}

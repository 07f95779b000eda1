/**
 * Network flows (Hubble's flow shape, from GET /v1/flows): a table of the
 * newest, and a graph of which workload talks to which, dropped flows in
 * red. Without a flow endpoint the page says so and shows nothing else.
 */
import { hasEndpoint } from './api.js';
import { banner, clear, fmtNum, fmtTime, h, s } from './dom.js';
import { liveStates, onLive, recentFlows } from './live.js';
import { endpointName, flowGraph, flowPolicy, flowPorts, type GraphEdge, type HubbleFlow } from './model.js';

const TABLE_ROWS = 300;

export function mountFlows(root: HTMLElement): () => void {
  clear(root);
  const notices = h('div', { class: 'notices' });
  const verdictSel = h(
    'select',
    { id: 'flow-verdict' },
    h('option', { value: '' }, 'all verdicts'),
    h('option', { value: 'FORWARDED' }, 'forwarded'),
    h('option', { value: 'DROPPED' }, 'dropped'),
    h('option', { value: 'AUDIT' }, 'audit'),
  );
  const textInput = h('input', { type: 'search', id: 'flow-text', placeholder: 'workload, address or port' });
  const info = h('span', { class: 'muted', id: 'flow-info' });
  const graphWrap = h('div', { class: 'graph-wrap', id: 'flow-graph' });
  const tableWrap = h('div', { class: 'table-wrap' });
  root.append(
    h('h1', null, 'Network flows'),
    notices,
    h('div', { class: 'toolbar' }, h('label', null, 'Show ', verdictSel), textInput, info),
    h('section', { class: 'card' }, h('h2', null, 'Who talks to whom'), graphWrap),
    h('section', { class: 'card' }, h('h2', null, 'Newest flows'), tableWrap),
  );

  const render = () => {
    const verdict = verdictSel.value;
    const text = textInput.value.trim().toLowerCase();
    const flows = recentFlows.filter((f) => {
      if (verdict && f.verdict !== verdict) return false;
      if (!text) return true;
      return JSON.stringify([f.source, f.destination, f.IP, f.l4]).toLowerCase().includes(text);
    });
    const dropped = flows.filter((f) => f.verdict === 'DROPPED').length;
    info.textContent = `${fmtNum(flows.length)} flows (${fmtNum(dropped)} dropped) since this page opened`;
    graphWrap.replaceChildren(graph(flows));
    tableWrap.replaceChildren(flowTable(flows.slice(-TABLE_ROWS).reverse()));
  };
  verdictSel.addEventListener('change', render);
  textInput.addEventListener('input', render);

  let off: (() => void) | undefined;
  void hasEndpoint('/v1/flows').then((ok) => {
    if (!ok) {
      notices.append(
        banner(
          'warn',
          'This agent serves no network flows (GET /v1/flows is missing). Flows come from the network sensor; an agent built with it shows them here.',
        ),
      );
      graphWrap.replaceChildren(h('p', { class: 'muted' }, 'No flow data.'));
      tableWrap.replaceChildren();
      return;
    }
    off = onLive(() => {
      const st = liveStates().flows;
      if (st.state === 'reconnecting') {
        notices.replaceChildren(banner('warn', `Flow stream interrupted (${st.reason}); reconnecting.`));
      } else notices.replaceChildren();
      render();
    });
    render();
  });
  return () => off?.();
}

function flowTable(flows: HubbleFlow[]): HTMLElement {
  if (flows.length === 0) return h('p', { class: 'muted' }, 'No flows yet.');
  return h(
    'table',
    { class: 'grid', id: 'flows-table' },
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        ['Time', 'Verdict', 'Event', 'Dir', 'Source', 'Destination', 'Proto', 'Policy', 'Process'].map((t) =>
          h('th', null, t),
        ),
      ),
    ),
    h(
      'tbody',
      null,
      flows.map((f) => {
        const p = flowPorts(f);
        const dropped = f.verdict === 'DROPPED';
        return h(
          'tr',
          { class: dropped ? 'sev-danger flow-dropped' : 'flow', title: f.Summary },
          h('td', { class: 'time' }, fmtTime(f.time)),
          h('td', null, h('span', { class: `verdict verdict-${f.verdict}` }, f.verdict)),
          h('td', null, f.osprey?.event ?? ''),
          h('td', null, f.traffic_direction === 'INGRESS' ? 'in' : 'out'),
          h('td', null, `${endpointName(f.source, f.IP.source)}${p.src ? `:${p.src}` : ''}`),
          h('td', null, `${endpointName(f.destination, f.IP.destination)}:${p.dst}`),
          h('td', null, p.proto),
          h('td', null, flowPolicy(f)),
          // the process that connected, when the agent knew it: its tree and what else it did
          h(
            'td',
            { class: 'num' },
            f.osprey?.exec_id
              ? h(
                  'a',
                  { href: `#/processes/${encodeURIComponent(f.osprey.exec_id)}`, class: 'flow-process' },
                  f.osprey.pid !== undefined ? String(f.osprey.pid) : 'process',
                )
              : (f.osprey?.pid ?? ''),
          ),
        );
      }),
    ),
  );
}

/**
 * Two columns: what starts flows (this host's workloads) on the left, what
 * they reach on the right; an arrow per talking pair, red and dashed where
 * flows were dropped, labelled with ports and counts.
 */
function graph(flows: HubbleFlow[]): Element {
  const { nodes, edges } = flowGraph(flows);
  if (nodes.length === 0) return h('p', { class: 'muted' }, 'No flows yet.');
  const sources = new Set(edges.map((e) => e.from));
  const left = nodes.filter((n) => sources.has(n.id)).sort((a, b) => a.id.localeCompare(b.id));
  const right = nodes.filter((n) => !sources.has(n.id)).sort((a, b) => a.id.localeCompare(b.id));
  const W = 960;
  const ROW = 64;
  const H = Math.max(180, 60 + Math.max(left.length, right.length) * ROW);
  const colX = { left: 260, right: W - 260 };
  const pos = new Map<string, { x: number; y: number; side: 'left' | 'right' }>();
  const place = (list: typeof nodes, side: 'left' | 'right') => {
    const top = (H - (list.length - 1) * ROW) / 2;
    list.forEach((n, i) => {
      pos.set(n.id, { x: colX[side], y: top + i * ROW, side });
    });
  };
  place(left, 'left');
  place(right, 'right');
  const marker = (id: string, cls: string) =>
    s(
      'marker',
      { id, viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto' },
      s('path', { d: 'M0,0 L10,5 L0,10 z', class: cls }),
    );
  const svg = s(
    'svg',
    { viewBox: `0 0 ${W} ${H}`, class: 'flow-graph', role: 'img', 'aria-label': 'flow graph' },
    s('defs', null, marker('arrow-ok', 'arrow-ok'), marker('arrow-drop', 'arrow-drop')),
  );
  const NODE_R = 14;
  for (const e of edges) svg.append(edge(e, pos, NODE_R));
  for (const n of nodes) {
    const p = pos.get(n.id)!;
    const label = n.id.length > 34 ? `${n.id.slice(0, 33)}…` : n.id;
    const isLeft = p.side === 'left';
    svg.append(
      s(
        'g',
        { class: `node ${n.local ? 'node-local' : 'node-remote'}` },
        s('title', null, n.id),
        s('circle', { cx: p.x, cy: p.y, r: NODE_R }),
        s(
          'text',
          {
            x: p.x + (isLeft ? -NODE_R - 8 : NODE_R + 8),
            y: p.y + 4,
            'text-anchor': isLeft ? 'end' : 'start',
          },
          label,
        ),
      ),
    );
  }
  const legend = h(
    'div',
    { class: 'legend' },
    h('span', { class: 'lg lg-local' }, 'workload on this host'),
    h('span', { class: 'lg lg-remote' }, 'peer'),
    h('span', { class: 'lg lg-ok' }, 'forwarded'),
    h('span', { class: 'lg lg-drop' }, 'dropped'),
  );
  return h('div', null, svg, legend);
}

function edge(
  e: GraphEdge,
  pos: Map<string, { x: number; y: number; side: 'left' | 'right' }>,
  nodeR: number,
): SVGElement {
  const a = pos.get(e.from)!;
  const b = pos.get(e.to)!;
  const dropped = e.dropped > 0;
  const counts = [e.forwarded ? `${e.forwarded} ok` : '', dropped ? `✕ ${e.dropped} dropped` : '']
    .filter(Boolean)
    .join(' · ');
  const label = `${e.ports.join(' ')}  ${counts}`.trim();
  const g = s(
    'g',
    { class: dropped ? 'edge edge-drop' : 'edge' },
    s('title', null, `${e.from} → ${e.to}: ${label}`),
  );
  if (e.from === e.to) {
    g.append(s('circle', { cx: a.x + nodeR * 1.6, cy: a.y - nodeR * 1.2, r: nodeR * 0.8, fill: 'none' }));
    return g;
  }
  let d: string;
  let lx: number;
  let ly: number;
  if (a.side !== b.side) {
    // a gentle S from left to right
    const x1 = a.x + nodeR;
    const x2 = b.x - nodeR - 2;
    const mx = (x1 + x2) / 2;
    d = `M${x1},${a.y} C${mx},${a.y} ${mx},${b.y} ${x2},${b.y}`;
    lx = mx;
    ly = (a.y + b.y) / 2 - 6;
  } else {
    // within a column: an arc bulging toward the middle
    const bulge = 60 + Math.abs(b.y - a.y) / 3;
    const cx = a.x + (a.side === 'left' ? bulge : -bulge);
    d = `M${a.x},${a.y + (b.y > a.y ? nodeR : -nodeR)} Q${cx},${(a.y + b.y) / 2} ${b.x},${b.y + (b.y > a.y ? -nodeR - 2 : nodeR + 2)}`;
    lx = cx;
    ly = (a.y + b.y) / 2;
  }
  g.append(
    s('path', { d, fill: 'none', 'marker-end': dropped ? 'url(#arrow-drop)' : 'url(#arrow-ok)' }),
    s('text', { x: lx, y: ly, 'text-anchor': 'middle', class: 'edge-label' }, label),
  );
  return g;
}

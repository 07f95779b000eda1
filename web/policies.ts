/**
 * Policies: the list with state, mode and the kernel's counters; enable,
 * disable, change mode, delete; and an editor to add a TracingPolicy from
 * YAML, where the agent's validation errors (FILE:LINE:COL: field: message)
 * are marked at their line.
 */
import { type ApiError, call, get, query } from './api.js';
import { banner, clear, fmtBytes, fmtNum, h } from './dom.js';
import { type PolicyProblem, parsePolicyError } from './model.js';

/** The name the agent gives the editor's text in its error messages. */
const SOURCE = 'editor.yaml';

interface PolicyCounters {
  events_posted: number;
  events_delivered: number;
  actions_taken: number;
  actions_monitored: number;
  actions_refused: number;
  actions_failed: number;
  rate_limited: number;
  drops: number;
}

interface PolicyInfo {
  name: string;
  state: 'enabled' | 'disabled' | 'error' | string;
  error?: string;
  mode: 'monitor' | 'enforce' | string;
  source: string;
  file: string;
  hooks: number;
  programs: number;
  added_at: string;
  loaded_at?: string;
  load_ms?: number;
  memory_bytes: number;
  counters: PolicyCounters | null;
}

export const EXAMPLE_POLICY = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: passwd-writes
spec:
  kprobes:
  - call: "sys_openat"
    syscall: true
    args:
    - index: 1
      type: "string"
    - index: 2
      type: "int"
    selectors:
    - matchArgs:
      - index: 1
        operator: "Equal"
        values:
        - "/etc/passwd"
      - index: 2
        operator: "Mask"
        values:
        - "1"  # O_WRONLY
        - "2"  # O_RDWR
`;

export function mountPolicies(root: HTMLElement): () => void {
  clear(root);
  const notices = h('div', { class: 'notices', id: 'policy-notices' });
  const listWrap = h('div', { class: 'table-wrap list-wrap' });
  root.append(h('h1', null, 'Policies'), notices, listWrap);
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;

  const say = (kind: 'info' | 'warn' | 'error', text: string) => {
    notices.replaceChildren(banner(kind, text));
  };

  /** force: after an action of the user's, whose own controls are then stale */
  const refresh = async (force = false) => {
    clearTimeout(timer);
    try {
      const r = await get<{ policies: PolicyInfo[] }>('/v1/policies');
      // not under the user's hands: a delete being confirmed, a mode being picked
      const busy =
        listWrap.querySelector('[data-action="confirm-delete"]') !== null ||
        listWrap.contains(document.activeElement);
      if (force || !busy) listWrap.replaceChildren(policyTable(r.policies, act));
    } catch (err) {
      listWrap.replaceChildren(banner('error', `Cannot list policies: ${(err as Error).message}`));
    }
    if (!stopped) timer = setTimeout(() => void refresh(), 3000);
  };

  const act = async (what: string, f: () => Promise<unknown>) => {
    (document.activeElement as HTMLElement | null)?.blur();
    try {
      await f();
      say('info', what);
    } catch (err) {
      const e = err as ApiError;
      say('error', `${e.message}${e.errors?.length > 1 ? ` (${e.errors.join('; ')})` : ''}`);
    }
    await refresh(true);
  };

  root.append(
    editor(async (yaml, mode) => {
      const info = await call<PolicyInfo>('POST', `/v1/policies${query({ mode, source: SOURCE })}`, {
        text: yaml,
        type: 'application/yaml',
      });
      say(
        'info',
        `Policy "${info.name}" added: ${info.state}, ${info.mode} mode, ${info.programs} programs attached.`,
      );
      await refresh(true);
      return info.name;
    }),
  );
  void refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

type Act = (what: string, f: () => Promise<unknown>) => Promise<void>;

function policyTable(list: PolicyInfo[], act: Act): HTMLElement {
  if (list.length === 0) {
    return h('p', { class: 'muted', id: 'policies-empty' }, 'No policies. Add one below.');
  }
  const path = (name: string) => `/v1/policies/${encodeURIComponent(name)}`;
  return h(
    'table',
    { class: 'grid', id: 'policies-table' },
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        [
          'Name',
          'State',
          'Mode',
          'Source',
          'Hooks',
          'Events',
          'Actions',
          'Monitored',
          'Refused',
          'Drops',
          'Memory',
          '',
        ].map((t) => h('th', null, t)),
      ),
    ),
    h(
      'tbody',
      null,
      list.map((p) => {
        const c = p.counters;
        const modeSel = h(
          'select',
          {
            class: 'mode-select',
            'aria-label': `mode of ${p.name}`,
            onchange: (ev: Event) => {
              const mode = (ev.target as HTMLSelectElement).value;
              void act(`Policy "${p.name}" is now in ${mode} mode.`, () =>
                call('PUT', `${path(p.name)}/mode${query({ mode })}`),
              );
            },
          },
          h('option', { value: 'monitor' }, 'monitor'),
          h('option', { value: 'enforce' }, 'enforce'),
        );
        modeSel.value = p.mode;
        const toggle =
          p.state === 'enabled'
            ? h(
                'button',
                {
                  type: 'button',
                  class: 'small',
                  onclick: () =>
                    void act(`Policy "${p.name}" disabled.`, () => call('POST', `${path(p.name)}/disable`)),
                },
                'Disable',
              )
            : h(
                'button',
                {
                  type: 'button',
                  class: 'small',
                  onclick: () =>
                    void act(`Policy "${p.name}" enabled.`, () => call('POST', `${path(p.name)}/enable`)),
                },
                'Enable',
              );
        const del = h('button', { type: 'button', class: 'small danger', 'data-action': 'delete' }, 'Delete');
        const cell = h('td', { class: 'actions' }, toggle, del);
        del.addEventListener('click', () => {
          // confirm in place: no modal dialog to get stuck behind
          cell.replaceChildren(
            h('span', null, `Delete ${p.name}? `),
            h(
              'button',
              {
                type: 'button',
                class: 'small danger',
                'data-action': 'confirm-delete',
                onclick: () => void act(`Policy "${p.name}" deleted.`, () => call('DELETE', path(p.name))),
              },
              'Yes, delete',
            ),
            h(
              'button',
              { type: 'button', class: 'small', onclick: () => cell.replaceChildren(toggle, del) },
              'No',
            ),
          );
        });
        return h(
          'tr',
          { 'data-policy': p.name, class: p.state === 'error' ? 'sev-danger' : '' },
          h('td', { class: 'name', title: p.file }, p.name),
          h(
            'td',
            null,
            h('span', { class: `state state-${p.state}` }, p.state),
            p.error ? h('div', { class: 'error-text' }, p.error) : null,
          ),
          h('td', null, modeSel),
          h('td', null, p.source),
          h('td', { class: 'num', title: `${p.programs} programs attached` }, p.hooks),
          h('td', { class: 'num' }, fmtNum(c?.events_posted)),
          h('td', { class: 'num' }, fmtNum(c?.actions_taken)),
          h('td', { class: 'num' }, fmtNum(c?.actions_monitored)),
          h('td', { class: 'num' }, fmtNum(c?.actions_refused)),
          h('td', { class: `num ${c?.drops ? 'bad' : ''}` }, fmtNum(c?.drops)),
          h('td', { class: 'num' }, fmtBytes(p.memory_bytes)),
          cell,
        );
      }),
    ),
  );
}

/** The YAML editor: line numbers, and each problem marked on its line with its message. */
function editor(submit: (yaml: string, mode: string) => Promise<string>): HTMLElement {
  const text = h('textarea', {
    id: 'policy-yaml',
    spellcheck: 'false',
    wrap: 'off',
    rows: 22,
    'aria-label': 'policy YAML',
    placeholder: 'Paste a TracingPolicy (apiVersion: cilium.io/v1alpha1, kind: TracingPolicy) here',
  });
  const gutter = h('div', { class: 'gutter', 'aria-hidden': 'true' });
  const backdrop = h('div', { class: 'backdrop', 'aria-hidden': 'true' });
  const problemsList = h('ul', { class: 'problems', id: 'policy-errors' });
  const modeSel = h(
    'select',
    { id: 'policy-mode' },
    h('option', { value: '' }, 'as the policy says'),
    h('option', { value: 'monitor' }, 'monitor'),
    h('option', { value: 'enforce' }, 'enforce'),
  );
  const addBtn = h('button', { type: 'button', class: 'primary', id: 'policy-add' }, 'Add policy');
  const status = h('span', { class: 'muted', id: 'policy-add-status' });
  let problems: PolicyProblem[] = [];

  const paint = () => {
    const lines = text.value.split('\n');
    const byLine = new Map<number, PolicyProblem[]>();
    for (const p of problems) {
      if (p.line === undefined) continue;
      const l = byLine.get(p.line) ?? [];
      l.push(p);
      byLine.set(p.line, l);
    }
    gutter.replaceChildren(
      ...lines.map((_, i) => {
        const ps = byLine.get(i + 1);
        return h(
          'div',
          { class: ps ? 'ln ln-error' : 'ln', title: ps ? ps.map((p) => p.message).join('\n') : null },
          i + 1,
        );
      }),
    );
    backdrop.replaceChildren(
      ...lines.map((l, i) => {
        const ps = byLine.get(i + 1);
        return h(
          'div',
          { class: ps ? 'bl bl-error' : 'bl', 'data-line': i + 1 },
          h('span', { class: 'bl-text' }, l || ' '),
          ps
            ? h(
                'span',
                { class: 'bl-msg' },
                ps.map((p) => `${p.field ? `${p.field}: ` : ''}${p.message}`).join(' · '),
              )
            : null,
        );
      }),
    );
    sync();
  };
  const sync = () => {
    gutter.scrollTop = text.scrollTop;
    backdrop.style.transform = `translate(${-text.scrollLeft}px, ${-text.scrollTop}px)`;
  };
  const goTo = (line: number) => {
    const lines = text.value.split('\n');
    let start = 0;
    for (let i = 0; i < line - 1 && i < lines.length; i++) start += lines[i]!.length + 1;
    text.focus();
    text.setSelectionRange(start, start + (lines[line - 1]?.length ?? 0));
    const lh = Number.parseFloat(getComputedStyle(text).lineHeight) || 18;
    text.scrollTop = Math.max(0, (line - 4) * lh);
    sync();
  };

  text.addEventListener('input', () => {
    // the marks belong to the text they were made for
    if (problems.length) {
      problems = [];
      problemsList.replaceChildren();
    }
    paint();
  });
  text.addEventListener('scroll', sync);
  text.addEventListener('keydown', (ev) => {
    if (ev.key === 'Tab') {
      ev.preventDefault();
      text.setRangeText('  ', text.selectionStart, text.selectionEnd, 'end');
      paint();
    }
  });

  addBtn.addEventListener('click', async () => {
    problems = [];
    problemsList.replaceChildren();
    status.textContent = 'loading…';
    addBtn.disabled = true;
    try {
      await submit(text.value, modeSel.value);
      status.textContent = '';
    } catch (err) {
      status.textContent = '';
      const e = err as ApiError;
      const texts = e.errors?.length ? e.errors : [e.message];
      problems = texts.map(parsePolicyError);
      const title =
        e.status === 400
          ? `The policy is not valid: ${problems.length} problem${problems.length > 1 ? 's' : ''}. Nothing was loaded.`
          : e.status === 409
            ? 'A policy of this name is loaded already: delete it first, or rename this one.'
            : e.status === 422
              ? 'The kernel refused the policy. Nothing was loaded.'
              : `The agent refused the policy (${e.status || 'no answer'}).`;
      problemsList.replaceChildren(
        h('li', { class: 'problems-title' }, title),
        ...problems.map((p) =>
          h(
            'li',
            { class: 'problem', 'data-line': p.line ?? '' },
            p.line !== undefined
              ? h(
                  'a',
                  {
                    href: '#',
                    class: 'at',
                    onclick: (ev: Event) => {
                      ev.preventDefault();
                      goTo(p.line!);
                    },
                  },
                  `line ${p.line}, column ${p.col}`,
                )
              : null,
            p.field ? h('code', null, p.field) : null,
            h('span', null, p.message),
          ),
        ),
      );
      paint();
      const first = problems.find((p) => p.line !== undefined);
      if (first?.line) goTo(first.line);
    } finally {
      addBtn.disabled = false;
    }
  });

  paint();
  return h(
    'section',
    { class: 'card', id: 'add-policy' },
    h(
      'div',
      { class: 'card-head' },
      h('h2', null, 'Add a TracingPolicy'),
      h(
        'button',
        {
          type: 'button',
          class: 'small',
          id: 'policy-example',
          onclick: () => {
            text.value = EXAMPLE_POLICY;
            problems = [];
            problemsList.replaceChildren();
            paint();
          },
        },
        'Insert an example',
      ),
    ),
    h('div', { class: 'editor' }, gutter, h('div', { class: 'code' }, backdrop, text)),
    h('div', { class: 'toolbar' }, h('label', null, 'Mode ', modeSel), addBtn, status),
    problemsList,
  );
}

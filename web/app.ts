/**
 * The web UI's entry: the header, the router (#/events, #/processes/ID,
 * #/policies, #/flows, #/status) and the sign-in the UI server asks for.
 */
import { ApiError, get, UI_HEADER, UNAUTHORIZED } from './api.js';
import { h } from './dom.js';
import { mountEvents } from './events.js';
import { mountFlows } from './flows.js';
import { startLive } from './live.js';
import { mountPolicies } from './policies.js';
import { mountProcesses } from './processes.js';
import { mountStatus } from './status.js';

type Mount = (root: HTMLElement, params: URLSearchParams, rest: string[]) => () => void;

const PAGES: { id: string; title: string; mount: Mount }[] = [
  { id: 'events', title: 'Events', mount: mountEvents },
  { id: 'processes', title: 'Process tree', mount: mountProcesses },
  { id: 'policies', title: 'Policies', mount: mountPolicies },
  { id: 'flows', title: 'Flows', mount: mountFlows },
  { id: 'status', title: 'Status', mount: mountStatus },
];

let unmount: (() => void) | undefined;

function route(main: HTMLElement, nav: HTMLElement): void {
  const hash = location.hash.replace(/^#\/?/, '');
  const [pathPart = '', queryPart = ''] = hash.split('?', 2);
  const [id = 'events', ...rest] = pathPart.split('/');
  const page = PAGES.find((p) => p.id === id) ?? PAGES[0]!;
  for (const a of nav.querySelectorAll('a')) {
    a.classList.toggle('active', a.dataset['page'] === page.id);
  }
  document.title = `${page.title} · Osprey`;
  unmount?.();
  main.replaceChildren();
  try {
    unmount = page.mount(main, new URLSearchParams(queryPart), rest);
  } catch (err) {
    main.append(h('div', { class: 'banner banner-error' }, `This page failed: ${(err as Error).message}`));
    unmount = undefined;
  }
}

function signIn(): void {
  if (document.getElementById('signin')) return;
  const input = h('input', {
    id: 'signin-token',
    type: 'password',
    autocomplete: 'off',
    placeholder: 'token',
    size: 44,
  });
  const msg = h('p', { class: 'error-text', id: 'signin-error' });
  const form = h(
    'form',
    {
      class: 'signin-box',
      onsubmit: async (ev: Event) => {
        ev.preventDefault();
        const res = await fetch('/ui/login', {
          method: 'POST',
          headers: { 'content-type': 'application/json', [UI_HEADER]: '1' },
          body: JSON.stringify({ token: input.value.trim() }),
        }).catch(() => undefined);
        if (res?.ok) location.reload();
        else msg.textContent = res ? 'That token is not right.' : 'The UI server does not answer.';
      },
    },
    h('h2', null, 'Sign in to Osprey'),
    h(
      'p',
      null,
      'The web UI needs the token in the file ',
      h('code', null, 'ui-token'),
      ' of the agent’s state directory (by default ',
      h('code', null, '/var/lib/osprey/ui-token'),
      ', readable by root only; the agent names it when it starts). Paste it here, or open ',
      h('code', null, '/?token=TOKEN'),
      '.',
    ),
    input,
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
    msg,
  );
  document.body.append(h('div', { class: 'signin', id: 'signin' }, form));
  input.focus();
}

function health(el: HTMLElement): void {
  const tick = async () => {
    try {
      const hl = await get<{ node_name?: string; version?: string; pid?: number }>('/v1/health');
      el.replaceChildren(
        h('span', { class: 'dot dot-ok' }),
        `${hl.node_name ?? 'agent'} · osprey ${hl.version ?? ''} · pid ${hl.pid ?? '?'}`,
      );
      el.title = 'the agent answers';
    } catch (err) {
      const signedOut = err instanceof ApiError && err.status === 401;
      el.replaceChildren(
        h('span', { class: 'dot dot-bad' }),
        signedOut ? 'not signed in' : 'agent not answering',
      );
      el.title = (err as Error).message;
    }
  };
  void tick();
  setInterval(tick, 5000);
}

function start(): void {
  const nav = h(
    'nav',
    { id: 'nav' },
    PAGES.map((p) => h('a', { href: `#/${p.id}`, 'data-page': p.id }, p.title)),
  );
  const agent = h('div', { class: 'agent', id: 'agent-health' });
  const main = h('main', { id: 'main' });
  document.body.replaceChildren(
    h(
      'header',
      { class: 'top' },
      h('div', { class: 'brand' }, h('span', { class: 'logo' }), 'Osprey'),
      nav,
      agent,
    ),
    main,
  );
  window.addEventListener(UNAUTHORIZED, signIn);
  window.addEventListener('hashchange', () => route(main, nav));
  health(agent);
  startLive();
  route(main, nav);
}

start();

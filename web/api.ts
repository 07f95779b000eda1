/**
 * The agent's API as the page reaches it: same origin, through the UI
 * server's proxy to the unix socket. Every request carries the header the
 * proxy wants for changes (a cross-site form cannot set it), and the session
 * cookie the sign-in set.
 */

export const UI_HEADER = 'x-osprey-ui';

/** An answer other than 2xx: its status and the agent's error messages. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** every message the agent gave (one per problem for an invalid policy) */
    readonly errors: string[] = [],
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Fired on window when the proxy wants the token: the page shows the sign-in. */
export const UNAUTHORIZED = 'osprey:unauthorized';

async function errorOf(res: Response): Promise<ApiError> {
  let message = `${res.status} ${res.statusText}`;
  let errors: string[] = [];
  try {
    const body = (await res.json()) as { error?: unknown; errors?: unknown };
    if (typeof body.error === 'string') message = body.error;
    if (Array.isArray(body.errors)) errors = body.errors.map(String);
  } catch {
    // not JSON: keep the status line
  }
  if (res.status === 401) window.dispatchEvent(new CustomEvent(UNAUTHORIZED));
  return new ApiError(res.status, message, errors);
}

/** A request; resolves with the JSON answer, rejects with ApiError. */
export async function call<T>(
  method: string,
  path: string,
  body?: { text: string; type: string },
  signal?: AbortSignal,
): Promise<T> {
  const headers: Record<string, string> = { [UI_HEADER]: '1', accept: 'application/json' };
  if (body) headers['content-type'] = body.type;
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      ...(body ? { body: body.text } : {}),
      ...(signal ? { signal } : {}),
      cache: 'no-store',
    });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiError(0, `the UI server does not answer (${(err as Error).message}): is the agent running?`);
  }
  if (!res.ok) throw await errorOf(res);
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export const get = <T>(path: string, signal?: AbortSignal) => call<T>('GET', path, undefined, signal);

const known = new Map<string, Promise<boolean>>();

/**
 * Does the agent serve this endpoint? Asked once per page load: endpoints
 * that other parts of the agent add (history, processes, flows) may be
 * missing from an older or smaller agent, and the pages then say so.
 */
export function hasEndpoint(probePath: string): Promise<boolean> {
  let p = known.get(probePath);
  if (!p) {
    p = (async () => {
      try {
        const res = await fetch(probePath, { headers: { [UI_HEADER]: '1' }, cache: 'no-store' });
        // streams answer 200 and keep going: we only wanted the status
        void res.body?.cancel().catch(() => {});
        if (res.status === 401) window.dispatchEvent(new CustomEvent(UNAUTHORIZED));
        // 503: there, but without what it needs (the event store is off or broken)
        return res.status !== 404 && res.status !== 405 && res.status !== 501 && res.status !== 503;
      } catch {
        return false;
      }
    })();
    known.set(probePath, p);
    // a failed sign-in must not make an endpoint look missing for good
    void p.then((ok) => {
      if (!ok) setTimeout(() => known.delete(probePath), 10_000);
    });
  }
  return p;
}

export type StreamState =
  | { state: 'connecting' }
  | { state: 'live' }
  | { state: 'reconnecting'; reason: string; inMs: number }
  | { state: 'missing' }
  | { state: 'refused'; error: ApiError }
  | { state: 'closed' };

export interface LineStream {
  close(): void;
}

/**
 * Follow an NDJSON stream: one callback per chunk of complete lines, and
 * reconnection with back-off when the stream ends (the agent restarted, or
 * cut a client that fell behind). A 4xx other than 401/404 is final: the
 * request itself is wrong (a bad regex) and asking again will not help.
 */
export function followLines(
  path: string,
  onLines: (items: unknown[]) => void,
  onState: (s: StreamState) => void,
): LineStream {
  const ctl = new AbortController();
  let closed = false;
  let backoff = 500;
  const run = async (): Promise<void> => {
    while (!closed) {
      onState({ state: 'connecting' });
      let reason = 'the stream ended';
      try {
        const res = await fetch(path, {
          headers: { [UI_HEADER]: '1' },
          signal: ctl.signal,
          cache: 'no-store',
        });
        if (res.status === 404) {
          onState({ state: 'missing' });
          return;
        }
        if (!res.ok) {
          const err = await errorOf(res);
          if (res.status >= 400 && res.status < 500 && res.status !== 401 && res.status !== 408) {
            onState({ state: 'refused', error: err });
            return;
          }
          throw err;
        }
        onState({ state: 'live' });
        backoff = 500;
        const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          const end = buf.lastIndexOf('\n');
          if (end < 0) continue;
          const lines = buf.slice(0, end).split('\n');
          buf = buf.slice(end + 1);
          const items: unknown[] = [];
          for (const l of lines) {
            if (l.trim() === '') continue;
            try {
              items.push(JSON.parse(l));
            } catch {
              // a line we cannot read is skipped, not fatal for the stream
            }
          }
          if (items.length) onLines(items);
        }
      } catch (err) {
        if (closed) return;
        reason = (err as Error).message;
      }
      if (closed) return;
      const inMs = backoff;
      onState({ state: 'reconnecting', reason, inMs });
      await new Promise((r) => setTimeout(r, inMs));
      backoff = Math.min(backoff * 2, 10_000);
    }
  };
  void run();
  return {
    close() {
      closed = true;
      ctl.abort();
      onState({ state: 'closed' });
    },
  };
}

/** A query string from the non-empty values. */
export function query(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

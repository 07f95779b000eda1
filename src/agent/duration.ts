/**
 * Durations and points in time as operators write them: "90s", "15m", "1h30m",
 * "7d", "2w"; and, for queries, either a duration back from now or an RFC 3339
 * time.
 */

const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/y;

/**
 * "1h30m" -> 5400000. A bare number is seconds ("30" = 30 s); "0" is 0.
 * Throws an Error that shows the accepted forms.
 */
export function parseDuration(text: string, what = 'duration'): number {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  let ms = 0;
  PART.lastIndex = 0;
  let pos = 0;
  while (pos < t.length) {
    PART.lastIndex = pos;
    const m = PART.exec(t);
    if (!m) break;
    ms += Number(m[1]) * UNIT_MS[m[2]!]!;
    pos = PART.lastIndex;
  }
  if (t === '' || pos !== t.length) {
    throw new Error(
      `${what} "${text}" is not a duration; write e.g. 500ms, 30s, 15m, 1h30m, 7d or 2w (a bare number is seconds)`,
    );
  }
  return Math.round(ms);
}

/** "1h30m" for 5400000: the largest units first, for messages and status. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [u, n] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
    ['ms', 1],
  ] as const) {
    if (rest >= n) {
      out += `${Math.floor(rest / n)}${u}`;
      rest %= n;
    }
  }
  return out;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/**
 * A query bound: a duration back from `nowMs` ("1h" = an hour ago), an RFC
 * 3339 time (kept as text, so its nanoseconds survive), or "now".
 */
export function parseTimeBound(text: string, what: string, nowMs = Date.now()): string {
  const t = text.trim();
  if (t === 'now') return new Date(nowMs).toISOString();
  if (RFC3339.test(t)) return t;
  let ms: number;
  try {
    ms = parseDuration(t, what);
  } catch {
    throw new Error(
      `${what} "${text}" is neither a duration back from now (30m, 1h, 7d) nor an RFC 3339 time ` +
        '(2026-11-25T08:13:22Z)',
    );
  }
  return new Date(nowMs - ms).toISOString();
}

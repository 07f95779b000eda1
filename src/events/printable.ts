/**
 * What an event carries from the processes it describes (argv, paths,
 * names) may hold control characters: a newline that makes one event look
 * like two, or an escape sequence that moves a terminal's cursor, erases a
 * line or recolours what follows. Text views (compact lines, `osprey
 * process`) show them as escapes instead, so that what a watched process
 * writes into its own argv cannot rewrite what the operator sees. JSON
 * output escapes them already.
 */

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const CONTROL_ALL = /[\u0000-\u001f\u007f-\u009f]/g;
const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escaped(c: string): string {
  return NAMED[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
}

/** s with its control characters (C0, DEL and C1) as visible escapes: \n, \r, \t, \xHH. */
export function printable(s: string): string {
  return CONTROL.test(s) ? s.replace(CONTROL_ALL, escaped) : s;
}

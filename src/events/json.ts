/**
 * JSON text of a string, as JSON.stringify writes it: the string quoted as
 * it is when nothing in it needs an escape (nearly always: paths, names,
 * times), else JSON.stringify's. A scan of a short string costs less than
 * a call into JSON.stringify.
 */
export function jsonString(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(s);
  }
  return `"${s}"`;
}

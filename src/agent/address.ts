/**
 * TCP listen addresses as flags take them: "127.0.0.1:2112", "[::1]:2112",
 * "localhost:2112", or a bare port (":2112" or "2112"), which means the
 * loopback address: nothing is exposed beyond the host unless asked for.
 */

export interface ListenAddress {
  host: string;
  /** 0 picks a free port */
  port: number;
}

export const LOOPBACK = '127.0.0.1';

/** Parse "HOST:PORT"; `flag` names the setting in the error. */
export function parseListenAddress(text: string, flag: string): ListenAddress {
  const t = text.trim();
  let host: string;
  let portText: string;
  const v6 = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(t);
  if (v6) {
    host = v6[1]!;
    portText = v6[2]!;
  } else if (/^\d+$/.test(t)) {
    host = '';
    portText = t;
  } else {
    const i = t.lastIndexOf(':');
    if (i < 0 || t.indexOf(':') !== i) {
      throw new Error(
        `${flag} "${text}" is not HOST:PORT; write e.g. 127.0.0.1:2112, [::1]:2112 or :2112 (loopback)`,
      );
    }
    host = t.slice(0, i);
    portText = t.slice(i + 1);
  }
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) {
    throw new Error(`${flag} "${text}": port "${portText}" must be a number from 0 to 65535`);
  }
  return { host: host === '' ? LOOPBACK : host, port };
}

/** "127.0.0.1:2112" or "[::1]:2112". */
export function formatAddress(a: ListenAddress): string {
  return `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}

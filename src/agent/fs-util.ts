import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';

/** "ENOENT: no such file or directory" from a Node fs error, without the path Node appends. */
export function describeFsError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.message !== 'string') return String(err);
  const msg = e.message.replace(/,\s*\w+\s+'[^']*'(\s*->\s*'[^']*')?$/, '');
  return e.code && !msg.startsWith(e.code) ? `${e.code}: ${msg}` : msg;
}

/** An error whose message is ready for the user: the CLI prints it as is, without a stack. */
export class UserError extends Error {
  constructor(
    message: string,
    /** the process exit code to use */
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'UserError';
  }
}

/**
 * mkdir -p. Node's own recursive mkdirSync spins forever when a parent
 * refuses new entries with ENOENT (as /proc does), so walk it ourselves:
 * find the deepest existing ancestor, then create each level below it.
 */
export function mkdirp(dir: string, mode = 0o755): void {
  const missing: string[] = [];
  let d = path.resolve(dir);
  for (;;) {
    try {
      if (!statSync(d).isDirectory()) {
        throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${d}'`), { code: 'ENOTDIR' });
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      missing.push(d);
      const up = path.dirname(d);
      if (up === d) break;
      d = up;
    }
  }
  for (const m of missing.reverse()) {
    try {
      mkdirSync(m, { mode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

import { mkdirSync, readdirSync, statSync } from 'node:fs';
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

/**
 * Policy paths to files: a directory gives its *.yaml and *.yml, sorted.
 * What cannot be read goes to `problems`, naming `what` (the flag or
 * command) whose path to check.
 */
export function expandPolicyPaths(paths: readonly string[], problems: string[], what: string): string[] {
  const files: string[] = [];
  for (const p of paths) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch (err) {
      problems.push(`${p}: ${describeFsError(err)} (check the ${what} path)`);
      continue;
    }
    if (!isDir) {
      files.push(p);
      continue;
    }
    let names: string[];
    try {
      names = readdirSync(p).filter((n) => /\.ya?ml$/.test(n));
    } catch (err) {
      problems.push(`${p}: cannot list: ${describeFsError(err)}`);
      continue;
    }
    if (names.length === 0) problems.push(`${p}: no *.yaml or *.yml files in this directory`);
    for (const n of names.sort()) files.push(path.join(p, n));
  }
  return files;
}

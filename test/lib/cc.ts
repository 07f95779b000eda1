// Small C programs the tests run, compiled where the test keeps its scratch.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

/** Writes SOURCE to DIR/NAME.c and compiles it (-O2 -Wall, then FLAGS) to DIR/NAME; returns that path. */
export function compileC(dir: string, name: string, source: string, flags: readonly string[] = []): string {
  const src = path.join(dir, `${name}.c`);
  const out = path.join(dir, name);
  writeFileSync(src, source);
  execFileSync('cc', ['-O2', '-Wall', ...flags, '-o', out, src]);
  return out;
}

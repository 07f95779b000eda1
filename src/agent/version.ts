import { readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from './config.js';

let cached: string | undefined;

/** The version in package.json. */
export function version(): string {
  if (cached === undefined) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
        version?: string;
      };
      cached = pkg.version ?? 'unknown';
    } catch {
      cached = 'unknown';
    }
  }
  return cached;
}

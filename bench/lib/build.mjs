// Which build of Osprey a benchmark measured. The compiled JavaScript and
// BPF objects can be rebuilt while a long benchmark runs (on a shared
// machine someone else may run `npm run build`): a fingerprint taken before
// each measurement shows whether all of them ran the same build.

import { createHash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

function walk(dir, keep, out) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, keep, out);
    else if (keep(e.name)) out.push(p);
  }
}

/**
 * A short id of the build in `repo`: a hash of the path, size and mtime of
 * every file under dist/src (.js) and bpf/.output (.o), with the time of the
 * newest one. Reads no file contents, so it is cheap enough to take often.
 */
export function buildFingerprint(repo) {
  const files = [];
  walk(path.join(repo, 'dist/src'), (n) => n.endsWith('.js'), files);
  walk(path.join(repo, 'bpf/.output'), (n) => n.endsWith('.o'), files);
  files.sort();
  const h = createHash('sha1');
  let newest = 0;
  for (const f of files) {
    let st;
    try {
      st = statSync(f);
    } catch {
      continue; // removed while we walked: the next fingerprint will differ anyway
    }
    newest = Math.max(newest, st.mtimeMs);
    h.update(`${path.relative(repo, f)}\0${st.size}\0${st.mtimeMs}\n`);
  }
  return {
    id: h.digest('hex').slice(0, 12),
    newest_file_time: newest ? new Date(newest).toISOString() : null,
    files: files.length,
  };
}

/**
 * Where policies added at run time survive a restart:
 *
 *   STATE_DIR/policies/index.json    which policies, their mode, enabled or not
 *   STATE_DIR/policies/NAME.yaml     each policy's YAML exactly as it was added
 *
 * Every file is replaced atomically (write a temporary file, fsync, rename,
 * fsync the directory), so a crash leaves the old version or the new one,
 * never half of either. The index is the truth: a YAML file it does not name
 * is ignored (and overwritten by the next policy of that name).
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { open as openAsync, rename as renameAsync, unlink as unlinkAsync } from 'node:fs/promises';
import path from 'node:path';
import type { PolicyMode } from '../sensors/tracing/index.js';
import { describeFsError, mkdirp } from './fs-util.js';

export interface StoredPolicy {
  name: string;
  /** the YAML file's name in the policies directory */
  file: string;
  mode: PolicyMode;
  enabled: boolean;
  /** the file name it was added as, which its error messages name */
  source: string;
  /** ISO time it was added */
  added_at: string;
}

interface IndexFile {
  version: 1;
  policies: StoredPolicy[];
}

const INDEX = 'index.json';
/** metadata.name may be 253 characters; a file name may be 255 bytes */
const MAX_PLAIN_NAME = 200;

export class PolicyStore {
  readonly dir: string;

  /** subdir: the directory under stateDir (network policies keep their own: network-policies) */
  constructor(stateDir: string, subdir = 'policies') {
    this.dir = path.join(stateDir, subdir);
  }

  get indexPath(): string {
    return path.join(this.dir, INDEX);
  }

  /**
   * The stored policies; [] when nothing was ever stored. An index that
   * cannot be read as one is moved aside (named in the returned warning) so
   * that the next write does not silently replace what it held.
   */
  read(): { policies: StoredPolicy[]; warning?: string } {
    let text: string;
    try {
      text = readFileSync(this.indexPath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { policies: [] };
      throw new Error(`cannot read ${this.indexPath}: ${describeFsError(err)}`);
    }
    try {
      return { policies: parseIndex(text) };
    } catch (err) {
      const aside = `${this.indexPath}.bad-${Date.now()}`;
      renameSync(this.indexPath, aside);
      return {
        policies: [],
        warning: `${this.indexPath} is not a policy index (${(err as Error).message}); moved it to ${aside} and started with no stored policies`,
      };
    }
  }

  /** A stored policy's YAML. */
  readText(p: StoredPolicy): string {
    const f = path.join(this.dir, p.file);
    try {
      return readFileSync(f, 'utf8');
    } catch (err) {
      throw new Error(`cannot read stored policy ${f}: ${describeFsError(err)}`);
    }
  }

  /** The file name a policy of this name is stored under. */
  fileFor(name: string): string {
    // metadata.name is [A-Za-z0-9._-], starting and ending alphanumeric: safe as a file name
    if (name.length <= MAX_PLAIN_NAME) return `${name}.yaml`;
    const h = createHash('sha256').update(name).digest('hex').slice(0, 16);
    return `${name.slice(0, MAX_PLAIN_NAME)}-${h}.yaml`;
  }

  writeText(file: string, text: string): void {
    this.ensureDir();
    atomicWrite(path.join(this.dir, file), text);
  }

  /**
   * writeText off the event loop: an add writes its YAML while the kernel
   * loads its programs, and names it in the index only once both are done.
   */
  async writeTextAsync(file: string, text: string): Promise<void> {
    this.ensureDir();
    await atomicWriteAsync(path.join(this.dir, file), text);
  }

  removeText(file: string): void {
    try {
      unlinkSync(path.join(this.dir, file));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  /** Replace the index. */
  save(policies: StoredPolicy[]): void {
    this.ensureDir();
    const doc: IndexFile = { version: 1, policies };
    atomicWrite(this.indexPath, `${JSON.stringify(doc, null, 2)}\n`);
  }

  private ensureDir(): void {
    try {
      mkdirp(this.dir, 0o700);
    } catch (err) {
      throw new Error(
        `cannot create the policy state directory ${this.dir}: ${describeFsError(err)}; choose another with --state-dir`,
      );
    }
  }
}

function parseIndex(text: string): StoredPolicy[] {
  const doc = JSON.parse(text) as Partial<IndexFile>;
  if (doc?.version !== 1 || !Array.isArray(doc.policies))
    throw new Error('expected {version: 1, policies: [...]}');
  return doc.policies.map((p, i) => {
    const ok =
      typeof p?.name === 'string' &&
      typeof p.file === 'string' &&
      !p.file.includes('/') &&
      (p.mode === 'monitor' || p.mode === 'enforce') &&
      typeof p.enabled === 'boolean';
    if (!ok) throw new Error(`policies[${i}] is not a stored policy`);
    return {
      name: p.name,
      file: p.file,
      mode: p.mode,
      enabled: p.enabled,
      source: typeof p.source === 'string' ? p.source : p.file,
      added_at: typeof p.added_at === 'string' ? p.added_at : '',
    };
  });
}

/** Write then rename, with both the file and the directory flushed: all of it or none of it. */
export function atomicWrite(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // never created, or already renamed
    }
    throw new Error(`cannot write ${file}: ${describeFsError(err)}`);
  }
  syncDir(path.dirname(file));
}

/** atomicWrite with every step on libuv's threads. */
async function atomicWriteAsync(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    const fh = await openAsync(tmp, 'w', 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await renameAsync(tmp, file);
  } catch (err) {
    await unlinkAsync(tmp).catch(() => undefined);
    throw new Error(`cannot write ${file}: ${describeFsError(err)}`);
  }
  const dir = await openAsync(path.dirname(file), 'r').catch(() => undefined);
  // some file systems refuse fsync on directories; the rename itself is atomic
  await dir
    ?.sync()
    .catch(() => undefined)
    .finally(() => dir.close().catch(() => undefined));
}

function syncDir(dir: string): void {
  try {
    if (!statSync(dir).isDirectory()) return;
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // some file systems refuse fsync on directories; the rename itself is atomic
  }
}

/**
 * JSON-lines file export with rotation: when the next batch would push the
 * file past its size limit, or when the rotation interval has passed,
 * file.N-1 -> file.N ... file -> file.1, keeping at most maxBackups old
 * files, and writing continues in a fresh file. With compression the
 * backups are file.1.gz ...: a rotated file waits for its gzip under a name
 * of its own (file.rotated.MS.SEQ) and is gzipped in the background, oldest
 * first, while writing goes on in the fresh file; each finished gzip becomes
 * file.1.gz, the older ones moving up. Writing never waits for a gzip: under
 * load the event loop turns slowly, and a stream's gzip, a few loop turns a
 * chunk, took longer than the file took to fill (rotations that waited for
 * it stopped the writes and the export queue overflowed). A file left
 * waiting by an agent that stopped is gzipped by the next one.
 * Lines are copied as they are handed over into one of two buffers that
 * take turns: one is written while the next lines fill the other, so what
 * waits for the disk is bytes, never the events (whose lines the shared
 * ring of encoded lines may have gone past by then), and everything that
 * came during a write goes out in one write(2) per file after it, never
 * one per event.
 */
import {
  closeSync,
  createReadStream,
  createWriteStream,
  existsSync,
  fstatSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  write,
} from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Line } from '../events/encode.js';
import { describeFsError, mkdirp, UserError } from './fs-util.js';
import { TurnBuffers } from './turn-buffers.js';

export interface FileExporterOptions {
  path: string;
  /** rotate before the file would exceed this many bytes */
  maxBytes: number;
  /** old files kept: file.1 .. file.N; 0 keeps none */
  maxBackups: number;
  /** also rotate a non-empty file this often (ms); 0 or absent: by size only */
  rotateIntervalMs?: number;
  /** gzip rotated files (file.1.gz ...) */
  compress?: boolean;
  /** a write or rotation failed; the exporter keeps going */
  onError?: (err: Error) => void;
  /**
   * How long lines handed over to an idle exporter wait for more before they
   * are written (default WRITE_DELAY_MS; 0 writes at once): each write is a
   * hand-off to a libuv worker thread and back.
   */
  writeDelayMs?: number;
}

/** Lines that find the exporter idle wait this long for the ones after them. */
export const WRITE_DELAY_MS = 5;

/** How often a write looks whether the path still names the file being written. */
const IDENTITY_CHECK_MS = 1000;

/** Bytes a gzip reads at a time: a few loop turns per chunk, so few chunks. */
const GZIP_CHUNK_BYTES = 1 << 20;

export interface FileExporterStats {
  path: string;
  size_bytes: number;
  max_size_bytes: number;
  max_backups: number;
  events_written: number;
  bytes_written: number;
  rotations: number;
  write_errors: number;
  /** events in batches that could not be written */
  events_lost: number;
  /** 0: by size only */
  rotation_interval_ms: number;
  compress: boolean;
  /** rotated files waiting for their gzip (or being gzipped) */
  compress_pending: number;
  last_error?: string;
}

/** Lines handed over and not yet written: their bytes, each with its newline, and where each ends. */
interface Batch {
  bytes: Buffer;
  ends: number[];
}

export class FileExporter {
  readonly path: string;
  private fd: number | undefined;
  private size = 0;
  private eventsWritten = 0;
  private bytesWritten = 0;
  private rotations = 0;
  private writeErrors = 0;
  private eventsLost = 0;
  private lastError: string | undefined;
  private writing: Promise<void> = Promise.resolve();
  /** rotated files waiting for their gzip, oldest first */
  private toCompress: string[] = [];
  /** the gzips under way (one file at a time, taken off toCompress), until toCompress is empty */
  private compressing: Promise<void> | undefined;
  /** rotated files this exporter named, for their order */
  private rotatedSeq = 0;
  private openedAt = Date.now();
  /** the inode of the file being written, and when the path was last seen to name it */
  private ino = 0;
  private identityCheckedAt = 0;
  private intervalTimer: NodeJS.Timeout | undefined;
  /** where lines handed over go until the write before them is done: two buffers take turns */
  private readonly held = new TurnBuffers();
  /** where each line held ends */
  private heldEnds: number[] = [];
  private drainQueued = false;
  /** a write is under way */
  private draining = false;
  /** handed over, not yet written */
  private heldEvents = 0;
  private heldBytes = 0;

  private constructor(private readonly opts: FileExporterOptions) {
    this.path = path.resolve(opts.path);
  }

  /**
   * Create missing parent directories and open the file for appending, so
   * that an unwritable path is reported at start-up, not at the first event.
   */
  static open(opts: FileExporterOptions): FileExporter {
    if (!(opts.maxBytes > 0)) throw new Error(`export file size limit ${opts.maxBytes} must be > 0 bytes`);
    if (!Number.isInteger(opts.maxBackups) || opts.maxBackups < 0) {
      throw new Error(`export file backups ${opts.maxBackups} must be an integer >= 0`);
    }
    const every = opts.rotateIntervalMs ?? 0;
    if (!Number.isFinite(every) || every < 0) {
      throw new Error(`export file rotation interval ${every} ms must be >= 0`);
    }
    const ex = new FileExporter(opts);
    const dir = path.dirname(ex.path);
    try {
      mkdirp(dir);
    } catch (err) {
      throw new UserError(
        `cannot create directory ${dir} for export file ${ex.path}: ${describeFsError(err)}; ` +
          'choose a writable path with --export-file',
      );
    }
    try {
      ex.reopen();
    } catch (err) {
      throw new UserError(
        `cannot write export file ${ex.path}: ${describeFsError(err)}; choose a writable path with --export-file`,
      );
    }
    // files an earlier agent rotated and did not get to gzip
    if (opts.compress === true && opts.maxBackups > 0) for (const f of ex.leftRotated()) ex.queueGzip(f);
    if (every > 0) {
      // checked at least every second, so a quiet file still rotates on time
      ex.intervalTimer = setInterval(() => ex.rotateIfDue(), Math.min(every, 1000));
      ex.intervalTimer.unref();
    }
    return ex;
  }

  /** Queue a rotation behind the writes when the interval has passed and the file is not empty. */
  private rotateIfDue(): void {
    const every = this.opts.rotateIntervalMs ?? 0;
    if (every <= 0 || Date.now() - this.openedAt < every) return;
    this.writing = this.writing.then(async () => {
      if (this.size > 0 && Date.now() - this.openedAt >= every) await this.rotate();
    });
  }

  /**
   * Append lines (text, UTF-8 bytes or encoded lines, without their newlines). Batches are written in call order;
   * the promise settles when this batch is on its way to the kernel. Errors
   * are counted and reported through onError, never thrown.
   */
  write(lines: readonly Line[]): Promise<void> {
    this.heldBytes += this.held.append(lines, this.heldEnds);
    this.heldEvents += lines.length;
    // lines handed over while a write is under way, or within the write delay, go out together
    if (!this.drainQueued) {
      this.drainQueued = true;
      // behind a write under way they wait for it anyway
      const delay = this.draining ? 0 : (this.opts.writeDelayMs ?? WRITE_DELAY_MS);
      this.writing = this.writing
        .then(() => (delay > 0 ? new Promise<void>((r) => setTimeout(r, delay)) : undefined))
        .then(() => this.drain());
    }
    return this.writing;
  }

  /** Writes every line handed over so far: one write(2) when they all fit in the current file. */
  private async drain(): Promise<void> {
    this.drainQueued = false;
    this.draining = true;
    // lines handed over from now on go to the other buffer
    const { bytes, written } = this.held.take();
    const batch: Batch = { bytes, ends: this.heldEnds };
    this.heldEnds = [];
    try {
      await this.writeNow(batch);
    } finally {
      this.heldEvents -= batch.ends.length;
      this.heldBytes -= batch.bytes.length;
      written();
      this.draining = false;
    }
  }

  /** What has been handed over and is not written yet. */
  backlog(): { events: number; bytes: number } {
    return { events: this.heldEvents, bytes: this.heldBytes };
  }

  /** Resolves when every batch written so far has been handed to the kernel. */
  flush(): Promise<void> {
    return this.writing;
  }

  async close(): Promise<void> {
    clearInterval(this.intervalTimer);
    await this.flush();
    await this.compressed();
    if (this.fd !== undefined) {
      try {
        closeSync(this.fd);
      } catch {
        // nothing useful to do: the data is written
      }
      this.fd = undefined;
    }
  }

  stats(): FileExporterStats {
    const s: FileExporterStats = {
      path: this.path,
      size_bytes: this.size,
      max_size_bytes: this.opts.maxBytes,
      max_backups: this.opts.maxBackups,
      events_written: this.eventsWritten,
      bytes_written: this.bytesWritten,
      rotations: this.rotations,
      write_errors: this.writeErrors,
      events_lost: this.eventsLost,
      rotation_interval_ms: this.opts.rotateIntervalMs ?? 0,
      compress: this.opts.compress === true,
      compress_pending: this.toCompress.length + (this.compressing === undefined ? 0 : 1),
    };
    if (this.lastError) s.last_error = this.lastError;
    return s;
  }

  private async writeNow(batch: Batch): Promise<void> {
    const { bytes, ends } = batch;
    if (ends.length === 0) return;
    // the usual case: it all fits in the current file
    if (bytes.length <= this.opts.maxBytes - this.size) {
      const ok = await this.appendBuffer(bytes);
      if (ok) this.eventsWritten += ends.length;
      else this.eventsLost += ends.length;
      return;
    }
    let i = 0;
    let from = 0;
    while (i < ends.length) {
      // take as many lines as fit in what is left of the current file
      const room = this.opts.maxBytes - this.size;
      const first = i;
      for (; i < ends.length; i++) {
        const bytesTo = ends[i]! - from;
        if (bytesTo > room && !(i === first && this.size === 0)) break;
        // a line larger than the limit goes alone into a fresh file
        if (bytesTo > room) {
          i++;
          break;
        }
      }
      if (i === first) {
        if (await this.rotate()) continue;
        // better a file over its limit than lost events: write the rest here
        i = ends.length;
      }
      const to = ends[i - 1]!;
      const ok = await this.appendBuffer(bytes.subarray(from, to));
      if (ok) this.eventsWritten += i - first;
      else this.eventsLost += i - first;
      from = to;
    }
  }

  private async appendBuffer(buf: Buffer): Promise<boolean> {
    this.reopenIfMoved();
    if (this.fd === undefined) {
      try {
        this.reopen();
      } catch (err) {
        this.fail(`reopen ${this.path}`, err);
        return false;
      }
    }
    let off = 0;
    try {
      while (off < buf.length) off += await writeAsync(this.fd!, buf, off);
    } catch (err) {
      this.fail(`write ${this.path}`, err);
      this.size += off;
      this.bytesWritten += off;
      // the next write looks at once whether the file is still ours (it may have been removed to free space)
      this.identityCheckedAt = 0;
      return false;
    }
    this.size += buf.length;
    this.bytesWritten += buf.length;
    return true;
  }

  /** Resolves when every rotated file has been gzipped (or has failed to be). */
  async compressed(): Promise<void> {
    while (this.compressing) await this.compressing;
  }

  /** Shift the backups and start an empty file (with compression, the full one waits for its gzip). */
  private async rotate(): Promise<boolean> {
    try {
      if (this.fd !== undefined) closeSync(this.fd);
      this.fd = undefined;
      const n = this.opts.maxBackups;
      if (n === 0) {
        unlinkSync(this.path);
      } else if (this.opts.compress === true) {
        const waiting = `${this.path}.rotated.${Date.now()}.${this.rotatedSeq++}`;
        renameSync(this.path, waiting);
        this.queueGzip(waiting);
      } else {
        this.shiftBackups('');
        renameSync(this.path, `${this.path}.1`);
      }
      this.rotations++;
      this.reopen();
      return true;
    } catch (err) {
      this.fail(`rotate ${this.path}`, err);
      return false;
    }
  }

  /** file.k{ext} -> file.k+1{ext} for k = N-1 .. 1 (file.N{ext} is overwritten: it is the oldest). */
  private shiftBackups(ext: string): void {
    for (let k = this.opts.maxBackups - 1; k >= 1; k--) {
      const from = `${this.path}.${k}${ext}`;
      if (existsSync(from)) renameSync(from, `${this.path}.${k + 1}${ext}`);
    }
  }

  /**
   * A rotated file to gzip after those before it. More waiting than there
   * are backups to keep: the oldest would be gone before its turn came, so
   * they go now.
   */
  private queueGzip(file: string): void {
    this.toCompress.push(file);
    while (this.toCompress.length > this.opts.maxBackups) {
      const oldest = this.toCompress.shift()!;
      try {
        rmSync(oldest, { force: true });
      } catch (err) {
        this.fail(`remove ${oldest}`, err);
      }
    }
    this.startGzips();
  }

  /** Gzip what waits, unless that is under way; a file queued as the last gzip ended is not left. */
  private startGzips(): void {
    if (this.compressing !== undefined || this.toCompress.length === 0) return;
    this.compressing = this.gzipAll().finally(() => {
      this.compressing = undefined;
      this.startGzips();
    });
  }

  private async gzipAll(): Promise<void> {
    for (let f = this.toCompress.shift(); f !== undefined; f = this.toCompress.shift()) await this.gzip(f);
  }

  /**
   * from gzipped into file.1.gz (the backups before it moved up), then from
   * removed; a failure keeps `from` as it is (the next agent tries again).
   * Never rejects.
   */
  private async gzip(from: string): Promise<void> {
    const tmp = `${this.path}.gz.tmp`;
    try {
      await pipeline(
        createReadStream(from, { highWaterMark: GZIP_CHUNK_BYTES }),
        createGzip(),
        createWriteStream(tmp, { mode: 0o640 }),
      );
      this.shiftBackups('.gz');
      renameSync(tmp, `${this.path}.1.gz`);
      unlinkSync(from);
    } catch (err) {
      this.fail(`compress ${from}`, err);
      try {
        rmSync(tmp, { force: true });
      } catch {
        // what stands there is not ours to remove (the failure above says why)
      }
    }
  }

  /** Files rotated by an earlier agent and left waiting for their gzip, oldest first. */
  private leftRotated(): string[] {
    const dir = path.dirname(this.path);
    const prefix = `${path.basename(this.path)}.rotated.`;
    const order = (name: string) => name.slice(prefix.length).split('.').map(Number);
    return readdirSync(dir)
      .filter((name) => name.startsWith(prefix) && /^\d+\.\d+$/.test(name.slice(prefix.length)))
      .sort((a, b) => {
        const [am, as] = order(a);
        const [bm, bs] = order(b);
        return am! - bm! || as! - bs!;
      })
      .map((name) => path.join(dir, name));
  }

  private reopen(): void {
    let fd: number;
    try {
      fd = openSync(this.path, 'a', 0o640);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      // its directory was removed (a clean-up of the log directory): made
      // again as at the start, or every event after it would be lost
      mkdirp(path.dirname(this.path));
      fd = openSync(this.path, 'a', 0o640);
    }
    this.fd = fd;
    const st = fstatSync(fd);
    this.size = st.size;
    this.ino = st.ino;
    this.openedAt = Date.now();
    this.identityCheckedAt = this.openedAt;
  }

  /**
   * Open the path again when it no longer names the file being written:
   * removed (to free space, once the disk filled) or renamed away by
   * someone else's rotation. Writing on into a removed file loses every
   * event, and keeps the space it held. Looked at every IDENTITY_CHECK_MS
   * and after a failed write.
   */
  private reopenIfMoved(): void {
    const now = Date.now();
    if (this.fd === undefined || now - this.identityCheckedAt < IDENTITY_CHECK_MS) return;
    this.identityCheckedAt = now;
    let ino: number | undefined;
    try {
      ino = statSync(this.path).ino;
    } catch {
      // gone: opened again below
    }
    if (ino === this.ino) return;
    try {
      closeSync(this.fd);
    } catch {
      // what was written is written
    }
    this.fd = undefined;
    try {
      this.reopen();
    } catch (err) {
      this.fail(`reopen ${this.path}`, err);
    }
  }

  private fail(what: string, err: unknown): void {
    this.writeErrors++;
    this.lastError = `${what}: ${describeFsError(err)}`;
    this.opts.onError?.(new Error(this.lastError));
  }
}

function writeAsync(fd: number, buf: Buffer, off: number): Promise<number> {
  return new Promise((resolve, reject) => {
    write(fd, buf, off, buf.length - off, null, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

/**
 * Events to standard output, one line each. Writes go through the libuv
 * thread pool (fs.write on fd 1), not process.stdout: on Linux a piped stdout
 * is written synchronously by Node, and a reader that stops reading would
 * then freeze the whole agent. Here only this exporter's bus queue fills up.
 */
import { write } from 'node:fs';
import { joinLines, type Line } from '../events/encode.js';
import { describeFsError } from './fs-util.js';

export interface StdoutExporterStats {
  format: string;
  events_written: number;
  bytes_written: number;
  write_errors: number;
  /** stdout was closed (EPIPE); nothing more is written */
  closed: boolean;
}

export class StdoutExporter<T> {
  private eventsWritten = 0;
  private bytesWritten = 0;
  private writeErrors = 0;
  private closed = false;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    readonly format: string,
    private readonly render: (ev: T) => Line,
    private readonly onError: (err: Error) => void = () => {},
    private readonly fd = 1,
  ) {}

  /** Write one batch; batches are written in call order. Errors are counted, not thrown. */
  write(events: readonly T[]): Promise<void> {
    const next = this.writing.then(() => this.writeNow(events));
    this.writing = next;
    return next;
  }

  flush(): Promise<void> {
    return this.writing;
  }

  stats(): StdoutExporterStats {
    return {
      format: this.format,
      events_written: this.eventsWritten,
      bytes_written: this.bytesWritten,
      write_errors: this.writeErrors,
      closed: this.closed,
    };
  }

  private async writeNow(events: readonly T[]): Promise<void> {
    if (this.closed || events.length === 0) return;
    const buf = joinLines(events.map(this.render));
    let off = 0;
    while (off < buf.length) {
      try {
        off += await writeAsync(this.fd, buf, off);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') {
          // a non-blocking stdout that is full: wait for the reader
          await new Promise((r) => setTimeout(r, 10));
          continue;
        }
        this.writeErrors++;
        if (code === 'EPIPE') {
          this.closed = true;
          this.onError(new Error('stdout was closed by its reader; no more events go to stdout'));
        } else {
          this.onError(new Error(`write stdout: ${describeFsError(err)}`));
        }
        return;
      }
    }
    this.eventsWritten += events.length;
    this.bytesWritten += buf.length;
  }
}

function writeAsync(fd: number, buf: Buffer, off: number): Promise<number> {
  return new Promise((resolve, reject) => {
    write(fd, buf, off, buf.length - off, null, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

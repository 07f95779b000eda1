/**
 * Two buffers that take turns holding lines on their way out (the export
 * file's): lines are copied into one as they are handed over while the
 * other is being written, then the two swap. The sink then holds bytes, not
 * events (which die young), and allocates nothing per batch once its
 * buffers are big enough.
 */
import { copyLine, type Line, linesBytes } from '../events/encode.js';

/** Bytes each buffer starts with. */
export const TURN_INITIAL = 256 * 1024;
/** A buffer that grew past this in a burst is let go once written, not kept for the next turn. */
export const TURN_KEEP = 4 * 1024 * 1024;

export class TurnBuffers {
  private fill: Buffer = Buffer.allocUnsafeSlow(TURN_INITIAL);
  private used = 0;
  /** the other buffer, when it is not being written */
  private spare: Buffer | undefined = Buffer.allocUnsafeSlow(TURN_INITIAL);

  /** Bytes held for the next take(). */
  get length(): number {
    return this.used;
  }

  /**
   * Copies lines, each followed by a newline, after what is held; `ends`,
   * when given, gets the offset where each line ends (its newline
   * included). Returns the bytes added.
   */
  append(lines: readonly Line[], ends?: number[]): number {
    const need = linesBytes(lines);
    if (this.used + need > this.fill.length) {
      const bigger = Buffer.allocUnsafeSlow(Math.max(this.fill.length * 2, this.used + need));
      this.fill.copy(bigger, 0, 0, this.used);
      this.fill = bigger;
    }
    const start = this.used;
    let off = start;
    for (const l of lines) {
      off += copyLine(l, this.fill, off);
      this.fill[off++] = 0x0a;
      ends?.push(off);
    }
    this.used = off;
    return off - start;
  }

  /**
   * What is held, to be written; lines appended from now on go to the other
   * buffer. Call `written` once the bytes are no longer needed (the write is
   * done or failed): the buffer is then kept for a later turn.
   */
  take(): { bytes: Buffer; written: () => void } {
    const full = this.fill;
    const bytes = full.subarray(0, this.used);
    this.fill = this.spare ?? Buffer.allocUnsafeSlow(TURN_INITIAL);
    this.spare = undefined;
    this.used = 0;
    return {
      bytes,
      written: () => {
        if (full.length <= TURN_KEEP) this.spare = full;
      },
    };
  }
}

/**
 * exec_id: base64 of "node:ktime:pid", Tetragon's convention, so an id names
 * one program run on one node across the whole fleet.
 */

/** Buffer's own methods that toString('base64') and write(s, off, 'latin1') call after checking their arguments. */
interface RawBuffer {
  base64Slice(from: number, to: number): string;
  latin1Write(s: string, off: number): number;
}

/** Where ids are put together: the node's name and a colon, then ktime:pid (made for every fork and exec). */
const scratch = Buffer.allocUnsafeSlow(512);
const raw = scratch as unknown as RawBuffer;
/** the node name whose bytes are at the start of scratch, and how many bytes they and their colon take */
let scratchNode: string | undefined;
let scratchNodeBytes = 0;
/** ktime (20 digits at most), a colon and a pid (10) */
const TAIL_MAX = 32;

export function makeExecId(nodeName: string, ktimeNs: bigint, pid: number): string {
  if (nodeName !== scratchNode) {
    const n = Buffer.byteLength(nodeName) + 1;
    if (n + TAIL_MAX > scratch.length) return Buffer.from(`${nodeName}:${ktimeNs}:${pid}`).toString('base64');
    scratch.write(`${nodeName}:`, 0);
    scratchNode = nodeName;
    scratchNodeBytes = n;
  }
  // digits and a colon: ASCII, one byte each
  const end = scratchNodeBytes + raw.latin1Write(`${ktimeNs}:${pid}`, scratchNodeBytes);
  return raw.base64Slice(0, end);
}

/** The parts of an exec_id, or undefined when it is not one of ours. */
export function parseExecId(execId: string): { nodeName: string; ktime: bigint; pid: number } | undefined {
  const s = Buffer.from(execId, 'base64').toString('utf8');
  const m = /^(.*):(\d+):(\d+)$/.exec(s);
  if (!m) return undefined;
  return { nodeName: m[1]!, ktime: BigInt(m[2]!), pid: Number(m[3]) };
}

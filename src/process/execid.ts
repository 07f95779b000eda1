/**
 * exec_id: base64 of "node:ktime:pid", Tetragon's convention, so an id names
 * one program run on one node across the whole fleet.
 */
export function makeExecId(nodeName: string, ktimeNs: bigint, pid: number): string {
  return Buffer.from(`${nodeName}:${ktimeNs}:${pid}`, 'utf8').toString('base64');
}

/** The parts of an exec_id, or undefined when it is not one of ours. */
export function parseExecId(execId: string): { nodeName: string; ktime: bigint; pid: number } | undefined {
  const s = Buffer.from(execId, 'base64').toString('utf8');
  const m = /^(.*):(\d+):(\d+)$/.exec(s);
  if (!m) return undefined;
  return { nodeName: m[1]!, ktime: BigInt(m[2]!), pid: Number(m[3]) };
}

/**
 * Ring-buffer records of the policy engine (struct osp_event and its args,
 * bpf/include/policy.h) to typed TracingRecords.
 */
import { i64At, u64At } from '../ints.js';
import { HDR } from '../process/layout.js';
import { ARG_REC, ArgFlag, ArgType, EVENT, EventFlag, OSP_LIMITS, REC_TRACING, SOCKADDR } from './layout.js';
import type { HookTable } from './tables.js';

export type TracingArg =
  | { type: 'int'; value: bigint }
  | { type: 'string'; value: string; truncated: boolean; fault: boolean }
  | { type: 'bytes'; value: Buffer; truncated: boolean; fault: boolean }
  /** an fd and the path of the file it was open on; path undefined when no file was open */
  | { type: 'fd'; fd: number; path: string | undefined; truncated: boolean }
  /** family AF_INET (2) / AF_INET6 (10) / other; addr empty for other families */
  | { type: 'sockaddr'; family: number; addr: string; port: number; fault: boolean };

export type TracingAction = 'none' | 'sigkill' | 'signal' | 'notify-enforcer';
export type TracingActionResult = 'none' | 'taken' | 'monitored' | 'refused' | 'failed';

export interface TracingRecord {
  kind: 'tracing';
  cpu: number;
  ktime: bigint;
  pid: number;
  tid: number;
  policyId: number;
  /** index in PolicyTables.hooks (the enter hook of a pair) */
  hook: number;
  /** index in the hook's selectors; undefined when the hook has none */
  selector: number | undefined;
  action: TracingAction;
  actionResult: TracingActionResult;
  /** the signal of the action (9 for sigkill), 0 for none */
  signal: number;
  /** the syscall's return value (enter/exit pairs) */
  ret?: bigint;
  args: TracingArg[];
}

const ACTIONS: readonly TracingAction[] = ['none', 'sigkill', 'signal', 'notify-enforcer'];
const RESULTS: readonly TracingActionResult[] = ['none', 'taken', 'monitored', 'refused', 'failed'];

/**
 * Decode one record at buf[off, off+len). hooks, when given, says which int
 * args are signed (otherwise ints decode as unsigned). Returns undefined for a
 * record of another type; throws on a malformed one.
 */
export function decodeTracingRecord(
  buf: Buffer,
  off: number,
  len: number,
  hooks?: readonly HookTable[],
): TracingRecord | undefined {
  if (len < EVENT.SIZE) throw new Error(`tracing record of ${len} bytes is shorter than ${EVENT.SIZE}`);
  if (buf.readUInt16LE(off + HDR.type) !== REC_TRACING) return undefined;
  const dataLen = buf.readUInt32LE(off + EVENT.data_len);
  if (EVENT.SIZE + dataLen > len) throw new Error(`tracing record of ${len} bytes is shorter than its args`);
  const hook = buf.readUInt16LE(off + EVENT.hook);
  const sel = buf[off + EVENT.selector] as number;
  const flags = buf[off + EVENT.flags] as number;
  const nargs = buf[off + EVENT.nargs] as number;
  const specs = hooks?.[hook]?.args;
  const rec: TracingRecord = {
    kind: 'tracing',
    cpu: buf.readUInt16LE(off + HDR.cpu),
    ktime: u64At(buf, off + HDR.ktime),
    pid: buf.readUInt32LE(off + HDR.pid),
    tid: buf.readUInt32LE(off + HDR.tid),
    policyId: buf.readUInt32LE(off + EVENT.policy_id),
    hook,
    selector: sel === OSP_LIMITS.NO_SELECTOR ? undefined : sel,
    action: ACTIONS[buf[off + EVENT.action] as number] ?? 'none',
    actionResult: RESULTS[buf[off + EVENT.result] as number] ?? 'none',
    signal: buf[off + EVENT.signal] as number,
    args: [],
  };
  if (flags & EventFlag.RET) rec.ret = i64At(buf, off + EVENT.ret);
  let at = off + EVENT.SIZE;
  const end = at + dataLen;
  // char_bufs read at the syscall's return (returnCopy): placeholders, filled from records after the args
  let atReturn: number[] | undefined;
  for (let i = 0; i < nargs && at + ARG_REC.SIZE <= end; i++) {
    const type = buf[at + ARG_REC.type] as number;
    const aflags = buf[at + ARG_REC.flags] as number;
    const alen = buf.readUInt16LE(at + ARG_REC.len);
    const p = at + ARG_REC.SIZE;
    if (p + alen > end) throw new Error(`arg ${i} of ${alen} bytes runs past the record`);
    const truncated = (aflags & ArgFlag.TRUNCATED) !== 0;
    const fault = (aflags & ArgFlag.FAULT) !== 0;
    switch (type) {
      case ArgType.INT:
        rec.args.push({
          type: 'int',
          value: specs?.[i]?.signed ? i64At(buf, p) : u64At(buf, p),
        });
        break;
      case ArgType.STRING:
        rec.args.push({ type: 'string', value: buf.toString('utf8', p, p + alen), truncated, fault });
        break;
      case ArgType.CHAR_BUF:
        if (aflags & ArgFlag.AT_RETURN) {
          atReturn ??= [];
          atReturn.push(rec.args.length);
        }
        rec.args.push({ type: 'bytes', value: Buffer.from(buf.subarray(p, p + alen)), truncated, fault });
        break;
      case ArgType.FD:
        rec.args.push({
          type: 'fd',
          fd: buf.readInt32LE(p),
          path: aflags & ArgFlag.NO_FILE ? undefined : buf.toString('utf8', p + 4, p + alen),
          truncated,
        });
        break;
      case ArgType.SOCKADDR:
        rec.args.push(decodeSockaddr(buf, p, fault));
        break;
      default:
        throw new Error(`arg ${i} has unknown type ${type}`);
    }
    at = p + alen;
  }
  for (const k of atReturn ?? []) {
    // none when the syscall did not return (the thread died in it) or there was no room
    if (at + ARG_REC.SIZE > end) break;
    const aflags = buf[at + ARG_REC.flags] as number;
    const alen = buf.readUInt16LE(at + ARG_REC.len);
    const p = at + ARG_REC.SIZE;
    if (p + alen > end) throw new Error(`returned buffer of ${alen} bytes runs past the record`);
    rec.args[k] = {
      type: 'bytes',
      value: Buffer.from(buf.subarray(p, p + alen)),
      truncated: (aflags & ArgFlag.TRUNCATED) !== 0,
      fault: (aflags & ArgFlag.FAULT) !== 0,
    };
    at = p + alen;
  }
  return rec;
}

function decodeSockaddr(buf: Buffer, p: number, fault: boolean): TracingArg {
  const family = buf.readUInt16LE(p + SOCKADDR.family);
  const port = buf.readUInt16LE(p + SOCKADDR.port);
  const a = p + SOCKADDR.addr;
  let addr = '';
  if (family === 2) addr = [0, 1, 2, 3].map((i) => buf[a + i]).join('.');
  else if (family === 10) addr = formatIpv6(buf.subarray(a, a + 16));
  return { type: 'sockaddr', family, addr, port, fault };
}

function formatIpv6(b: Buffer): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i));
  // the longest run of zero groups becomes "::"
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

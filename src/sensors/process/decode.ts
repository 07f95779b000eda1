import { u64At } from '../ints.js';
import { EXEC, EXIT, FORK, HDR, RecordType } from './layout.js';
import {
  type ExecRecord,
  type ExitRecord,
  type ForkRecord,
  type NamespaceName,
  NS_NAMES,
  type ProcessRecord,
} from './records.js';

/**
 * Decode one ring-buffer record at buf[off, off+len). Returns undefined for a
 * record type this sensor does not know (counted by the caller) and throws on
 * a record too short for its type.
 */
export function decodeRecord(buf: Buffer, off: number, len: number): ProcessRecord | undefined {
  if (len < HDR.SIZE) throw new Error(`record of ${len} bytes is shorter than its header`);
  const type = buf.readUInt16LE(off + HDR.type);
  const hdr = {
    cpu: buf.readUInt16LE(off + HDR.cpu),
    ktime: u64At(buf, off + HDR.ktime),
    pid: buf.readUInt32LE(off + HDR.pid),
    tid: buf.readUInt32LE(off + HDR.tid),
  };
  switch (type) {
    case RecordType.EXEC:
      need(len, EXEC.SIZE, 'exec');
      return decodeExec(buf, off, len, hdr);
    case RecordType.FORK: {
      need(len, FORK.SIZE, 'fork');
      const r: ForkRecord = {
        kind: 'fork',
        ...hdr,
        ppid: buf.readUInt32LE(off + FORK.ppid),
        startTime: u64At(buf, off + FORK.start_time),
        parentStartTime: u64At(buf, off + FORK.parent_start_time),
        cgroupId: u64At(buf, off + FORK.cgroup_id),
      };
      return r;
    }
    case RecordType.EXIT: {
      need(len, EXIT.SIZE, 'exit');
      const r: ExitRecord = {
        kind: 'exit',
        ...hdr,
        ppid: buf.readUInt32LE(off + EXIT.ppid),
        exitCode: buf.readUInt32LE(off + EXIT.exit_code),
        startTime: u64At(buf, off + EXIT.start_time),
        cgroupId: u64At(buf, off + EXIT.cgroup_id),
      };
      return r;
    }
    default:
      return undefined;
  }
}

function need(len: number, size: number, what: string): void {
  if (len < size) throw new Error(`${what} record of ${len} bytes is shorter than ${size}`);
}

function decodeExec(
  buf: Buffer,
  off: number,
  len: number,
  hdr: { cpu: number; ktime: bigint; pid: number; tid: number },
): ExecRecord {
  const pathLen = buf.readUInt16LE(off + EXEC.path_len);
  const filenameLen = buf.readUInt16LE(off + EXEC.filename_len);
  const argsLen = buf.readUInt32LE(off + EXEC.args_len);
  const cwdLen = buf.readUInt16LE(off + EXEC.cwd_len);
  let at = off + EXEC.SIZE;
  const end = off + len;
  if (at + pathLen + filenameLen + argsLen + cwdLen > end) {
    throw new Error(`exec record of ${len} bytes is shorter than its parts`);
  }
  const path = buf.toString('utf8', at, at + pathLen);
  at += pathLen;
  const filename = buf.toString('utf8', at, at + filenameLen);
  at += filenameLen;
  const argv = splitArgs(buf, at, at + argsLen);
  at += argsLen;
  const cwd = buf.toString('utf8', at, at + cwdLen);
  const ns = {} as Record<NamespaceName, number>;
  NS_NAMES.forEach((name, i) => {
    ns[name] = buf.readUInt32LE(off + EXEC.ns + 4 * i);
  });
  return {
    kind: 'exec',
    ...hdr,
    ppid: buf.readUInt32LE(off + EXEC.ppid),
    uid: buf.readUInt32LE(off + EXEC.uid),
    euid: buf.readUInt32LE(off + EXEC.euid),
    gid: buf.readUInt32LE(off + EXEC.gid),
    egid: buf.readUInt32LE(off + EXEC.egid),
    suid: buf.readUInt32LE(off + EXEC.suid),
    sgid: buf.readUInt32LE(off + EXEC.sgid),
    auid: buf.readUInt32LE(off + EXEC.auid),
    flags: buf.readUInt32LE(off + EXEC.flags),
    nlink: buf.readUInt32LE(off + EXEC.nlink),
    ino: u64At(buf, off + EXEC.ino),
    cgroupId: u64At(buf, off + EXEC.cgroup_id),
    startTime: u64At(buf, off + EXEC.start_time),
    parentStartTime: u64At(buf, off + EXEC.parent_start_time),
    capPermitted: u64At(buf, off + EXEC.cap_permitted),
    capEffective: u64At(buf, off + EXEC.cap_effective),
    capInheritable: u64At(buf, off + EXEC.cap_inheritable),
    ns,
    fileUid: buf.readUInt32LE(off + EXEC.file_uid),
    fileGid: buf.readUInt32LE(off + EXEC.file_gid),
    fileMode: buf.readUInt32LE(off + EXEC.file_mode),
    argc: buf.readUInt32LE(off + EXEC.argc),
    path,
    filename,
    argv,
    cwd,
  };
}

/** argv is NUL-separated with a trailing NUL; a truncated one may lack it. */
function splitArgs(buf: Buffer, start: number, end: number): string[] {
  const out: string[] = [];
  let s = start;
  for (let i = start; i < end; i++) {
    if (buf[i] === 0) {
      out.push(buf.toString('utf8', s, i));
      s = i + 1;
    }
  }
  if (s < end) out.push(buf.toString('utf8', s, end));
  return out;
}

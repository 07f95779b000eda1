import { u64At } from '../ints.js';
import { EXEC, EXIT, FORK, HDR, RecordType } from './layout.js';
import type { ExecRecord, ExitRecord, ForkRecord, NamespaceName, ProcessRecord } from './records.js';

/**
 * Decode one ring-buffer record at buf[off, off+len). Returns undefined for a
 * record type this sensor does not know (counted by the caller) and throws on
 * a record too short for its type.
 */
export function decodeRecord(buf: Buffer, off: number, len: number): ProcessRecord | undefined {
  if (len < HDR.SIZE) throw new Error(`record of ${len} bytes is shorter than its header`);
  // each record an object literal of its own, fields in one order: a spread
  // header or keys set one by one made V8 copy and look up keys generically
  // (a tenth of the agent's time in an exec storm went to decoding)
  switch (buf[off + HDR.type]! | (buf[off + HDR.type + 1]! << 8)) {
    case RecordType.EXEC:
      need(len, EXEC.SIZE, 'exec');
      return decodeExec(buf, off, len);
    case RecordType.FORK: {
      need(len, FORK.SIZE, 'fork');
      const r: ForkRecord = {
        kind: 'fork',
        cpu: buf.readUInt16LE(off + HDR.cpu),
        ktime: u64At(buf, off + HDR.ktime),
        pid: buf.readUInt32LE(off + HDR.pid),
        tid: buf.readUInt32LE(off + HDR.tid),
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
        cpu: buf.readUInt16LE(off + HDR.cpu),
        ktime: u64At(buf, off + HDR.ktime),
        pid: buf.readUInt32LE(off + HDR.pid),
        tid: buf.readUInt32LE(off + HDR.tid),
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

/** Buffer's own UTF-8 read, which toString('utf8', from, to) calls after checking its arguments. */
interface Utf8Reader {
  utf8Slice(from: number, to: number): string;
}

/** The UTF-8 text at buf[from, to) (in range: the caller checked). */
function utf8At(buf: Buffer, from: number, to: number): string {
  return (buf as unknown as Utf8Reader).utf8Slice(from, to);
}

function need(len: number, size: number, what: string): void {
  if (len < size) throw new Error(`${what} record of ${len} bytes is shorter than ${size}`);
}

/** The namespaces' inode numbers at `at`, in NS_NAMES order. */
function decodeNamespaces(buf: Buffer, at: number): Record<NamespaceName, number> {
  return {
    uts: buf.readUInt32LE(at),
    ipc: buf.readUInt32LE(at + 4),
    mnt: buf.readUInt32LE(at + 8),
    pid: buf.readUInt32LE(at + 12),
    pid_for_children: buf.readUInt32LE(at + 16),
    net: buf.readUInt32LE(at + 20),
    time: buf.readUInt32LE(at + 24),
    time_for_children: buf.readUInt32LE(at + 28),
    cgroup: buf.readUInt32LE(at + 32),
    user: buf.readUInt32LE(at + 36),
  };
}

function decodeExec(buf: Buffer, off: number, len: number): ExecRecord {
  const pathLen = buf.readUInt16LE(off + EXEC.path_len);
  const filenameLen = buf.readUInt16LE(off + EXEC.filename_len);
  const argsLen = buf.readUInt32LE(off + EXEC.args_len);
  const cwdLen = buf.readUInt16LE(off + EXEC.cwd_len);
  let at = off + EXEC.SIZE;
  const end = off + len;
  if (at + pathLen + filenameLen + argsLen + cwdLen > end) {
    throw new Error(`exec record of ${len} bytes is shorter than its parts`);
  }
  const path = utf8At(buf, at, at + pathLen);
  at += pathLen;
  const filename = utf8At(buf, at, at + filenameLen);
  at += filenameLen;
  const argv = splitArgs(buf, at, at + argsLen);
  at += argsLen;
  const cwd = utf8At(buf, at, at + cwdLen);
  return {
    kind: 'exec',
    cpu: buf.readUInt16LE(off + HDR.cpu),
    ktime: u64At(buf, off + HDR.ktime),
    pid: buf.readUInt32LE(off + HDR.pid),
    tid: buf.readUInt32LE(off + HDR.tid),
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
    ns: decodeNamespaces(buf, off + EXEC.ns),
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
      out.push(utf8At(buf, s, i));
      s = i + 1;
    }
  }
  if (s < end) out.push(utf8At(buf, s, end));
  return out;
}

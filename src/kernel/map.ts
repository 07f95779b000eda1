import { readFileSync } from 'node:fs';
import { KernelError } from './errors.js';
import { type NativeMapInfo, native } from './native.js';

/** How keys or values of a map turn into bytes and back. */
export interface Codec<T> {
  size: number;
  encode(v: T, out: Buffer): void;
  decode(buf: Buffer): T;
}

export const u32: Codec<number> = {
  size: 4,
  encode: (v, out) => out.writeUInt32LE(v >>> 0, 0),
  decode: (b) => b.readUInt32LE(0),
};

export const u64: Codec<bigint> = {
  size: 8,
  encode: (v, out) => out.writeBigUInt64LE(v, 0),
  decode: (b) => b.readBigUInt64LE(0),
};

export function bytes(size: number): Codec<Buffer> {
  return {
    size,
    encode: (v, out) => {
      out.fill(0);
      v.copy(out, 0, 0, Math.min(size, v.length));
    },
    decode: (b) => Buffer.from(b),
  };
}

export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;

/** errnos of a batch operation the kernel does not have for a map type (EINVAL, ENOTSUPP, EOPNOTSUPP) */
const BATCH_UNSUPPORTED = new Set([22, 524, 95]);
const ENOENT = 2;

const PERCPU_TYPES = new Set([5, 6, 10, 21]); // PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH, PERCPU_CGROUP_STORAGE

/**
 * A BPF map seen through codecs. Per-CPU maps hold one value per possible CPU;
 * use lookupPerCpu for them.
 */
export class BpfMap<K, V> {
  readonly name: string;
  readonly fd: number;
  readonly info: NativeMapInfo;
  private readonly keyBuf: Buffer;
  private readonly valBuf: Buffer;

  constructor(
    info: NativeMapInfo,
    private readonly keyCodec: Codec<K>,
    private readonly valueCodec: Codec<V>,
  ) {
    if (keyCodec.size !== info.keySize && info.keySize !== 0) {
      throw new Error(`map ${info.name}: key codec is ${keyCodec.size} bytes, map key is ${info.keySize}`);
    }
    if (valueCodec.size !== info.valueSize) {
      throw new Error(
        `map ${info.name}: value codec is ${valueCodec.size} bytes, map value is ${info.valueSize}`,
      );
    }
    this.name = info.name;
    this.fd = info.fd;
    this.info = info;
    this.keyBuf = Buffer.alloc(Math.max(keyCodec.size, 1));
    this.valBuf = Buffer.alloc(valueCodec.size * (PERCPU_TYPES.has(info.type) ? possibleCpus() : 1));
  }

  get isPerCpu(): boolean {
    return PERCPU_TYPES.has(this.info.type);
  }

  lookup(key: K): V | undefined {
    this.keyCodec.encode(key, this.keyBuf);
    if (!this.call('lookup', () => native().mapLookup(this.fd, this.keyBuf, this.valBuf))) return undefined;
    return this.valueCodec.decode(this.valBuf.subarray(0, this.valueCodec.size));
  }

  /** One value per possible CPU (per-CPU maps). */
  lookupPerCpu(key: K): V[] | undefined {
    this.keyCodec.encode(key, this.keyBuf);
    if (!this.call('lookup', () => native().mapLookup(this.fd, this.keyBuf, this.valBuf))) return undefined;
    const out: V[] = [];
    // per-CPU values are rounded up to 8 bytes each
    const stride = (this.valueCodec.size + 7) & ~7;
    for (let off = 0; off + this.valueCodec.size <= this.valBuf.length; off += stride) {
      out.push(this.valueCodec.decode(this.valBuf.subarray(off, off + this.valueCodec.size)));
    }
    return out;
  }

  update(key: K, value: V, flags = BPF_ANY): void {
    this.keyCodec.encode(key, this.keyBuf);
    const v = Buffer.alloc(this.valBuf.length);
    if (this.isPerCpu) {
      const stride = (this.valueCodec.size + 7) & ~7;
      const one = Buffer.alloc(this.valueCodec.size);
      this.valueCodec.encode(value, one);
      for (let off = 0; off + one.length <= v.length; off += stride) one.copy(v, off);
    } else {
      this.valueCodec.encode(value, v);
    }
    this.call('update', () => native().mapUpdate(this.fd, this.keyBuf, v, flags));
  }

  delete(key: K): boolean {
    this.keyCodec.encode(key, this.keyBuf);
    return this.call('delete', () => native().mapDelete(this.fd, this.keyBuf));
  }

  /**
   * Writes `count` entries given as bytes, keys packed end to end in `keys`
   * and values in `values`, in one syscall (the kernel's batch update), or
   * one by one where the kernel has no batch update for the map. Per-CPU
   * values as update() writes them (one per possible CPU) are the caller's.
   */
  updateMany(keys: Buffer, values: Buffer, count: number, flags = BPF_ANY): void {
    const ks = this.keyCodec.size;
    const vs = this.valBuf.length;
    this.checkMany(keys, count, values);
    if (count === 0) return;
    if (this.batches) {
      try {
        native().mapUpdateBatch(this.fd, keys, values, count, flags);
        return;
      } catch (err) {
        this.batchFailed(err, 'update batch', 0);
      }
    }
    for (let i = 0; i < count; i++) {
      const k = keys.subarray(i * ks, (i + 1) * ks);
      const v = values.subarray(i * vs, (i + 1) * vs);
      this.call('update', () => native().mapUpdate(this.fd, k, v, flags));
    }
  }

  /**
   * Deletes `count` keys packed end to end in `keys`, as updateMany writes
   * them, in batches where the kernel has them; a key that is not there is
   * passed over. Returns how many were deleted.
   */
  deleteMany(keys: Buffer, count: number): number {
    const ks = this.keyCodec.size;
    this.checkMany(keys, count);
    let at = 0;
    let n = 0;
    while (at < count && this.batches) {
      try {
        native().mapDeleteBatch(this.fd, keys.subarray(at * ks, count * ks), count - at);
        return n + count - at;
      } catch (err) {
        const e = err as { errno?: number; done?: number };
        if (e.errno === ENOENT) {
          // the batch stops at a key that is not there: pass over it, go on with the rest
          n += e.done ?? 0;
          at += (e.done ?? 0) + 1;
        } else this.batchFailed(err, 'delete batch', n);
      }
    }
    for (; at < count; at++) {
      const k = keys.subarray(at * ks, (at + 1) * ks);
      if (this.call('delete', () => native().mapDelete(this.fd, k))) n++;
    }
    return n;
  }

  /** The kernel takes batches for this map (until one is refused as unsupported). */
  private batches = true;

  /**
   * A batch operation failed: when the kernel has none for this map (refused
   * with nothing done), batches are off and the caller goes one by one;
   * otherwise it throws, saying how many entries were done (`doneBefore` in
   * earlier batches of the same call, and this one's).
   */
  private batchFailed(err: unknown, what: string, doneBefore: number): void {
    const e = err as { errno?: number; done?: number };
    if ((e.done ?? 0) === 0 && e.errno !== undefined && BATCH_UNSUPPORTED.has(e.errno)) {
      this.batches = false;
      return;
    }
    throw new KernelError(
      `map ${this.name}: ${what} (${doneBefore + (e.done ?? 0)} done before the failure)`,
      err,
    );
  }

  private checkMany(keys: Buffer, count: number, values?: Buffer): void {
    if (!Number.isInteger(count) || count < 0 || keys.length < count * this.keyCodec.size)
      throw new Error(
        `map ${this.name}: ${count} keys of ${this.keyCodec.size} bytes do not fit ${keys.length}`,
      );
    if (values && values.length < count * this.valBuf.length)
      throw new Error(
        `map ${this.name}: ${count} values of ${this.valBuf.length} bytes do not fit ${values.length}`,
      );
  }

  /** Every key, by get_next_key. Keys deleted during iteration may be skipped. */
  *keys(): Generator<K> {
    let prev: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(this.keyBuf.length);
      if (!this.call('iterate', () => native().mapNextKey(this.fd, prev, next))) return;
      yield this.keyCodec.decode(next);
      prev = next;
    }
  }

  *entries(): Generator<[K, V]> {
    for (const k of this.keys()) {
      const v = this.lookup(k);
      if (v !== undefined) yield [k, v];
    }
  }

  /**
   * All entries in batches of `chunk` where the kernel supports batch lookup
   * (hash maps); other maps fall back to entries().
   */
  lookupAll(chunk = 256): [K, V][] {
    const out: [K, V][] = [];
    if (this.isPerCpu || ![1, 9].includes(this.info.type)) {
      for (const e of this.entries()) out.push(e);
      return out;
    }
    const keys = Buffer.alloc(this.keyCodec.size * chunk);
    const vals = Buffer.alloc(this.valueCodec.size * chunk);
    let inBatch: Buffer | null = null;
    const outBatch = Buffer.alloc(Math.max(this.keyCodec.size, 8));
    for (;;) {
      const r = this.call('lookup batch', () =>
        native().mapLookupBatch(this.fd, inBatch, outBatch, keys, vals, chunk),
      );
      for (let i = 0; i < r.count; i++) {
        const k = this.keyCodec.decode(keys.subarray(i * this.keyCodec.size, (i + 1) * this.keyCodec.size));
        const v = this.valueCodec.decode(
          vals.subarray(i * this.valueCodec.size, (i + 1) * this.valueCodec.size),
        );
        out.push([k, v]);
      }
      if (r.done) return out;
      inBatch = Buffer.from(outBatch);
    }
  }

  private call<T>(what: string, f: () => T): T {
    try {
      return f();
    } catch (err) {
      throw new KernelError(`map ${this.name}: ${what}`, err);
    }
  }
}

let cpus: number | undefined;

/** Number of possible CPUs: the stride of per-CPU map values. */
export function possibleCpus(): number {
  if (cpus === undefined) cpus = parseCpuList(readFileOr('/sys/devices/system/cpu/possible', '0'));
  return cpus;
}

export function parseCpuList(s: string): number {
  let max = 0;
  for (const part of s.trim().split(',')) {
    const [, b] = part.split('-');
    max = Math.max(max, Number(b ?? part));
  }
  return max + 1;
}

function readFileOr(p: string, fallback: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return fallback;
  }
}

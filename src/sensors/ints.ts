/**
 * 64-bit integers of kernel records as bigints, with one bigint made per
 * value: Buffer's readBigUInt64LE / readBigInt64LE make three (two halves
 * and their sum), and records carry several (a policy event's time and int
 * arguments, an exec's times, ids and capability sets). A value below 2^53
 * in magnitude — nearly all of them — is put together as a number first.
 */

/** The unsigned 64-bit integer little-endian at buf[off]. */
export function u64At(buf: Buffer, off: number): bigint {
  const hi = buf.readUInt32LE(off + 4);
  return hi < 0x200000 ? BigInt(hi * 4294967296 + buf.readUInt32LE(off)) : buf.readBigUInt64LE(off);
}

/** The signed 64-bit integer little-endian at buf[off]. */
export function i64At(buf: Buffer, off: number): bigint {
  const hi = buf.readInt32LE(off + 4);
  return hi >= -0x200000 && hi < 0x200000
    ? BigInt(hi * 4294967296 + buf.readUInt32LE(off))
    : buf.readBigInt64LE(off);
}

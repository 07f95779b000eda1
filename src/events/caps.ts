/** Capability names by bit number, as linux/capability.h defines them. */
export const CAP_NAMES: readonly string[] = [
  'CAP_CHOWN', // 0
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL', // 5
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE', // 10
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER', // 15
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT', // 20
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME', // 25
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL', // 30
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM', // 35
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE', // 40
];

/** Name of capability bit n; bits newer than this table are named "CAP_<n>". */
export function capName(bit: number): string {
  return CAP_NAMES[bit] ?? `CAP_${bit}`;
}

/** Names of the bits set in a capability mask, lowest bit first. */
export function capNames(mask: bigint): string[] {
  const out: string[] = [];
  let m = mask;
  for (let bit = 0; m !== 0n && bit < 64; bit++, m >>= 1n) {
    if (m & 1n) out.push(capName(bit));
  }
  return out;
}

/** Bit number of a capability name ("CAP_SYS_ADMIN" or "sys_admin"), or undefined. */
export function capBit(name: string): number | undefined {
  const upper = name.toUpperCase();
  const full = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  const i = CAP_NAMES.indexOf(full);
  if (i >= 0) return i;
  const m = /^CAP_(\d+)$/.exec(full);
  return m ? Number(m[1]) : undefined;
}

/**
 * Syscall names as policies write them ("sys_openat", "__x64_sys_openat",
 * "openat") and the syscall tracepoints that stand in for syscall kprobes on a
 * kernel without kprobes.
 */
import { X86_64_SYSCALL_NUMBERS } from './syscall-numbers.js';

/** The per-arch prefix of syscall entry points, which Tetragon reports as the kprobe's function_name. */
export function syscallPrefix(arch: string = process.arch): string {
  switch (arch) {
    case 'x64':
      return '__x64_sys_';
    case 'arm64':
      return '__arm64_sys_';
    default:
      return `__${arch}_sys_`;
  }
}

/**
 * Where the __NR_ name and the SYSCALL_DEFINE name (which names the
 * tracepoint and the entry point) differ.
 */
const NR_TO_DEFINE: Readonly<Record<string, string>> = {
  stat: 'newstat',
  lstat: 'newlstat',
  fstat: 'newfstat',
  uname: 'newuname',
  sendfile: 'sendfile64',
  umount2: 'umount',
};
const DEFINE_TO_NR: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(NR_TO_DEFINE).map(([nr, def]) => [def, nr]),
);

export type SyscallName = { ok: true; name: string } | { ok: false; message: string; hint: string };

/**
 * The syscall a kprobe `call` or list value names, in its tracepoint
 * spelling ("openat", "newstat"), or why it cannot be one. Does not check that
 * the syscall exists: the tracepoint lookup does.
 */
export function syscallName(raw: string, arch: string = process.arch): SyscallName {
  let s = raw.trim();
  if (/^(i386|ia32|x32)\//.test(s) || /^__(ia32|x32)_(compat_)?sys_/.test(s)) {
    return {
      ok: false,
      message: `"${raw}" is a 32-bit (compat) syscall`,
      hint: 'the syscall tracepoints see only native 64-bit syscalls; hook the 64-bit one',
    };
  }
  const prefix = syscallPrefix(arch);
  if (s.startsWith(prefix)) s = s.slice(prefix.length);
  else if (s.startsWith('sys_')) s = s.slice(4);
  else if (/^__[a-z0-9]+_sys_/.test(s)) {
    return {
      ok: false,
      message: `"${raw}" is a syscall entry point of another architecture`,
      hint: `on this machine it is "${prefix}${s.replace(/^__[a-z0-9]+_sys_/, '')}"`,
    };
  }
  if (!/^[a-z0-9_]+$/.test(s)) {
    return {
      ok: false,
      message: `"${raw}" is not a syscall name`,
      hint: 'write it as "sys_openat" or "openat"',
    };
  }
  return { ok: true, name: NR_TO_DEFINE[s] ?? s };
}

/** The entry point an event reports as function_name: "__x64_sys_openat". */
export function syscallFunctionName(name: string, arch: string = process.arch): string {
  return `${syscallPrefix(arch)}${name}`;
}

/** The syscall number on this architecture; undefined when unknown (only x86_64 is tabled). */
export function syscallNumber(name: string, arch: string = process.arch): number | undefined {
  if (arch !== 'x64') return undefined;
  return X86_64_SYSCALL_NUMBERS[DEFINE_TO_NR[name] ?? name];
}

export const SYSCALL_SUBSYSTEM = 'syscalls';
export const enterEvent = (name: string): string => `sys_enter_${name}`;
export const exitEvent = (name: string): string => `sys_exit_${name}`;

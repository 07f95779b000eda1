/** Signal names by number on Linux (x86, arm64 and most other architectures). */
const NAMES: readonly (string | undefined)[] = [
  undefined,
  'SIGHUP', // 1
  'SIGINT',
  'SIGQUIT',
  'SIGILL',
  'SIGTRAP', // 5
  'SIGABRT',
  'SIGBUS',
  'SIGFPE',
  'SIGKILL',
  'SIGUSR1', // 10
  'SIGSEGV',
  'SIGUSR2',
  'SIGPIPE',
  'SIGALRM',
  'SIGTERM', // 15
  'SIGSTKFLT',
  'SIGCHLD',
  'SIGCONT',
  'SIGSTOP',
  'SIGTSTP', // 20
  'SIGTTIN',
  'SIGTTOU',
  'SIGURG',
  'SIGXCPU',
  'SIGXFSZ', // 25
  'SIGVTALRM',
  'SIGPROF',
  'SIGWINCH',
  'SIGIO',
  'SIGPWR', // 30
  'SIGSYS',
];

/** glibc reserves 32 and 33 for itself, so user-visible SIGRTMIN is 34. */
const SIGRTMIN = 34;
const SIGRTMAX = 64;

/** Name of signal n: "SIGKILL", "SIGRTMIN+3"; "SIG<n>" for numbers without one. */
export function signalName(n: number): string {
  const name = NAMES[n];
  if (name) return name;
  if (n === SIGRTMIN) return 'SIGRTMIN';
  if (n === SIGRTMAX) return 'SIGRTMAX';
  if (n > SIGRTMIN && n < SIGRTMAX) return `SIGRTMIN+${n - SIGRTMIN}`;
  return `SIG${n}`;
}

/** Number of a signal given as "SIGKILL", "KILL" or "9"; undefined when unknown. */
export function signalNumber(name: string): number | undefined {
  if (/^\d+$/.test(name)) return Number(name);
  const upper = name.toUpperCase();
  const full = upper.startsWith('SIG') ? upper : `SIG${upper}`;
  const i = NAMES.indexOf(full);
  if (i > 0) return i;
  if (full === 'SIGRTMIN') return SIGRTMIN;
  if (full === 'SIGRTMAX') return SIGRTMAX;
  const m = /^SIGRTMIN\+(\d+)$/.exec(full);
  if (m && SIGRTMIN + Number(m[1]) <= SIGRTMAX) return SIGRTMIN + Number(m[1]);
  return undefined;
}

/**
 * Split a wait(2) status: a signal (low 7 bits; 0x80 is the core-dump flag)
 * or an exit status (bits 8..15).
 */
export function decodeWaitStatus(status: number): { signal?: string; status?: number } {
  const sig = status & 0x7f;
  if (sig !== 0) return { signal: signalName(sig) };
  return { status: (status >> 8) & 0xff };
}

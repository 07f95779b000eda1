/** An error from the kernel bridge, with the verifier log when there is one. */
export class KernelError extends Error {
  readonly errno: number | undefined;
  readonly program: string | undefined;
  readonly verifierLog: string | undefined;

  constructor(what: string, cause: unknown) {
    const c = cause as { message?: string; errno?: number; program?: string; log?: string };
    const tail = c.log ? logTail(c.log) : '';
    super(`${what}: ${c.message ?? String(cause)}${tail ? `\n${tail}` : ''}`, { cause });
    this.name = 'KernelError';
    this.errno = c.errno;
    this.program = c.program || undefined;
    this.verifierLog = c.log || undefined;
  }
}

/** The last lines of a libbpf/verifier log: where the verdict is. */
export function logTail(log: string, lines = 20): string {
  const all = log.trimEnd().split('\n');
  return all.slice(-lines).join('\n');
}

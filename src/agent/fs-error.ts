/** "ENOENT: no such file or directory" from a Node fs error, without the path Node appends. */
export function describeFsError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.message !== 'string') return String(err);
  const msg = e.message.replace(/,\s*\w+\s+'[^']*'(\s*->\s*'[^']*')?$/, '');
  return e.code && !msg.startsWith(e.code) ? `${e.code}: ${msg}` : msg;
}

/** An error whose message is ready for the user: the CLI prints it as is, without a stack. */
export class UserError extends Error {
  constructor(
    message: string,
    /** the process exit code to use */
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'UserError';
  }
}

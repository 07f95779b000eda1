import { realpathSync } from 'node:fs';
import path from 'node:path';

export interface ExecBinary {
  /** what ran: the program, or for a script the script */
  binary: string;
  /** for a script, the interpreter the kernel ran it with */
  interpreter?: string;
  /** index in argv of the first argument that belongs to the program */
  argsFrom: number;
}

/** Paths that name a file descriptor of the exec'ing process; resolving them here would read ours. */
const FD_PATH = /^\/(dev\/fd|proc\/self\/fd)\//;

/**
 * Which program an exec ran. The kernel reports the file it executed (path)
 * with links resolved; for a "#!" script that is the interpreter, and argv
 * is rewritten to [interpreter-as-written, optional-arg, script-as-passed,
 * args...] with the script as passed equal to filename. So a script shows as
 * argv[1] or argv[2] equal to filename while filename itself resolves to some
 * other file than path. realpath (a file-system access) runs only in that
 * suspected case, and only to rule out a symlink to the binary itself.
 */
export function resolveExecBinary(
  execPath: string,
  filename: string,
  argv: readonly string[],
  cwd: string,
  realpath: (p: string) => string = realpathSync,
): ExecBinary {
  let at = -1;
  if (filename !== '') {
    if (argv[1] === filename) at = 1;
    else if (argv[2] === filename) at = 2;
  }
  if (at < 0) return { binary: execPath, argsFrom: 1 };
  const resolved = path.resolve(cwd || '/', filename);
  if (resolved === execPath) return { binary: execPath, argsFrom: 1 };
  let script = resolved;
  if (!FD_PATH.test(filename)) {
    try {
      script = realpath(resolved);
    } catch {
      // another mount namespace, or gone already: the lexical path is the best we have
    }
    if (script === execPath) return { binary: execPath, argsFrom: 1 };
  }
  return { binary: script, interpreter: execPath, argsFrom: at + 1 };
}

import { ExecFlags } from '../sensors/process/records.js';

const NEEDS_QUOTES = /[\s"]/;

/**
 * argv[from..] as one string, the way Tetragon's `arguments` reads: joined by
 * single spaces, and an argument holding whitespace or a double quote (or an
 * empty one) wrapped in double quotes with `"` and `\` escaped by a backslash,
 * so that the words of the string still say where each argument begins.
 * It is a display form: no shell would parse it back unchanged.
 */
export function joinArguments(argv: readonly string[], from = 1): string {
  let out = '';
  for (let i = from; i < argv.length; i++) {
    const a = argv[i]!;
    const q = a === '' || NEEDS_QUOTES.test(a) ? `"${a.replace(/["\\]/g, '\\$&')}"` : a;
    out = i === from ? q : `${out} ${q}`;
  }
  return out;
}

/**
 * The `flags` string of an exec: "execve", then a word for each thing the
 * kernel could not capture whole. The words are Tetragon's where it has one
 * (truncFilename, truncArgs, errorArgs); truncPath and truncCwd name our
 * own path limits.
 */
export function execFlagsString(flags: number): string {
  let s = 'execve';
  if (flags & ExecFlags.FILENAME_TRUNCATED) s += ' truncFilename';
  if (flags & ExecFlags.PATH_TRUNCATED) s += ' truncPath';
  if (flags & ExecFlags.ARGS_TRUNCATED) s += ' truncArgs';
  if (flags & ExecFlags.ARGS_FAULT) s += ' errorArgs';
  if (flags & ExecFlags.CWD_TRUNCATED) s += ' truncCwd';
  if (flags & ExecFlags.CWD_UNREACHABLE) s += ' errorCWD';
  return s;
}

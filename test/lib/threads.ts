// This process's threads and their nice values (Linux gives each thread its own).
import { readdirSync, readFileSync } from 'node:fs';

/** thread id -> nice, from /proc/self/task/TID/stat */
export function threadNices(): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      // the fields after the command's closing parenthesis; nice is field 19
      out.set(Number(tid), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

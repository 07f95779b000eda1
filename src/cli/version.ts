/** `osprey version` */
import { version } from '../agent/version.js';

export function versionCommand(): number {
  process.stdout.write(`osprey ${version()}\n`);
  return 0;
}

// The CLI's entry, run by bin/osprey (which says why it starts Node the way
// it does). Client commands run from the bundle of them, one CommonJS file
// (scripts/bundle-cli.mjs: Node starts it ~17 ms sooner than the same code
// as ES modules); `osprey agent`, a missing bundle, or one older than the
// compiled main.js (tsc ran since it was made) run from the ES modules.
// Node resolves this file's symlinks, so the paths below hold from any cwd.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { pathToFileURL } = require('node:url');

const dist = path.join(__dirname, '..', 'dist', 'src', 'cli');
const main = path.join(dist, 'main.js');
const bundle = path.join(dist, 'osprey-cli.cjs');

/** Why the bundle cannot be used (missing, or older than tsc's output), or undefined. */
function bundleProblem() {
  let built;
  try {
    built = fs.statSync(bundle).mtimeMs;
  } catch {
    return 'is missing';
  }
  try {
    if (built < fs.statSync(main).mtimeMs) return 'is older than the compiled main.js';
  } catch {
    // no compiled CLI either: said below
  }
  return undefined;
}

/** The ES modules' main, or a clear exit when they were never built. */
async function esModules() {
  try {
    return await import(pathToFileURL(main).href);
  } catch (err) {
    if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('main.js')) {
      process.stderr.write(`osprey: ${main} is missing; build it with \`npm run build\` in the repository\n`);
      process.exit(1);
    }
    throw err;
  }
}

async function load() {
  if (process.argv[2] === 'agent') return esModules();
  const problem = bundleProblem();
  if (!problem) return require(bundle);
  // said to a person at a terminal; a script or a test reading stderr gets the
  // same answers as from the bundle (bench/policy checks the bundle itself)
  if (process.stderr.isTTY && fs.existsSync(main)) {
    process.stderr.write(
      `osprey: ${bundle} ${problem}; running the ES modules (slower to start). ` +
        'Rebuild with `npm run build` (or `node scripts/bundle-cli.mjs` after tsc)\n',
    );
  }
  return esModules();
}

// glibc read MALLOC_ARENA_MAX at start (the agent's); what the agent or the
// CLI starts (`osprey run -- CMD`) must not inherit it
delete process.env.MALLOC_ARENA_MAX;
// bin/osprey kept NODE_EXTRA_CA_CERTS from Node; the environment gets it back
if (process.env.OSPREY_NODE_EXTRA_CA_CERTS !== undefined) {
  process.env.NODE_EXTRA_CA_CERTS = process.env.OSPREY_NODE_EXTRA_CA_CERTS;
  delete process.env.OSPREY_NODE_EXTRA_CA_CERTS;
}
/**
 * Exit once what was written to stdout and stderr has gone out. A pipe takes
 * 64 KiB at once and Node queues the rest, which process.exit() drops: `osprey
 * events --since 1h -o json | jq` got the first 64 KiB of the answer. A
 * reader gone away (EPIPE) ends the wait too.
 */
function exitWhenWritten(code) {
  const pending = [process.stdout, process.stderr].filter((s) => s.writableLength > 0 && !s.destroyed);
  let left = pending.length;
  if (left === 0) process.exit(code);
  const one = () => {
    if (--left === 0) process.exit(code);
  };
  for (const s of pending) s.write('', one);
}

load()
  .then((cli) => cli.main(process.argv.slice(2)))
  .then(exitWhenWritten, (err) => {
    process.stderr.write(`osprey: ${err?.stack ?? err}\n`);
    exitWhenWritten(1);
  });

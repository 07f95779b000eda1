// The CLI's entry for every command but `osprey agent`, run by bin/osprey
// (which says why it starts Node the way it does). It loads the client
// commands bundled as one CommonJS file (scripts/bundle-cli.mjs: Node starts
// it ~17 ms sooner than the same code as ES modules); `osprey agent`, a
// missing bundle, or one older than the compiled main.js (tsc ran since it
// was made) go through the ES modules instead (bin/cli.mjs).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const dist = path.join(__dirname, '..', 'dist', 'src', 'cli');
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
    if (built < fs.statSync(path.join(dist, 'main.js')).mtimeMs) return 'is older than the compiled main.js';
  } catch {
    // no compiled CLI either: bin/cli.mjs says how to build it
  }
  return undefined;
}

const problem = process.argv[2] === 'agent' ? undefined : bundleProblem();
if (process.argv[2] === 'agent' || problem) {
  // said to a person at a terminal; a script or a test reading stderr gets the
  // same answers as from the bundle (bench/policy checks the bundle itself)
  if (problem && process.stderr.isTTY && fs.existsSync(path.join(dist, 'main.js'))) {
    process.stderr.write(
      `osprey: ${bundle} ${problem}; running the ES modules (slower to start). ` +
        'Rebuild with `npm run build` (or `node scripts/bundle-cli.mjs` after tsc)\n',
    );
  }
  import('./cli.mjs');
} else {
  // as bin/cli.mjs: what the CLI starts (`osprey run -- CMD`) gets the environment bin/osprey was given
  delete process.env.MALLOC_ARENA_MAX;
  if (process.env.OSPREY_NODE_EXTRA_CA_CERTS !== undefined) {
    process.env.NODE_EXTRA_CA_CERTS = process.env.OSPREY_NODE_EXTRA_CA_CERTS;
    delete process.env.OSPREY_NODE_EXTRA_CA_CERTS;
  }
  require(bundle)
    .main(process.argv.slice(2))
    .then(
      (code) => process.exit(code),
      (err) => {
        process.stderr.write(`osprey: ${err?.stack ?? err}\n`);
        process.exit(1);
      },
    );
}

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

function bundleIsCurrent() {
  try {
    return fs.statSync(bundle).mtimeMs >= fs.statSync(path.join(dist, 'main.js')).mtimeMs;
  } catch {
    return false;
  }
}

if (process.argv[2] === 'agent' || !bundleIsCurrent()) {
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

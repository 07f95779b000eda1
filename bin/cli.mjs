// The CLI's entry, run by bin/osprey (which says why it starts Node the way
// it does). Node resolves this file's symlinks before loading it, so the
// relative import below works from any cwd.

// glibc read MALLOC_ARENA_MAX at start (the agent's); what the agent or the
// CLI starts (`osprey run -- CMD`) must not inherit it
delete process.env.MALLOC_ARENA_MAX;
// bin/osprey kept NODE_EXTRA_CA_CERTS from Node; the environment gets it back
if (process.env.OSPREY_NODE_EXTRA_CA_CERTS !== undefined) {
  process.env.NODE_EXTRA_CA_CERTS = process.env.OSPREY_NODE_EXTRA_CA_CERTS;
  delete process.env.OSPREY_NODE_EXTRA_CA_CERTS;
}
const entry = new URL('../dist/src/cli/main.js', import.meta.url);

let cli;
try {
  cli = await import(entry.href);
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('main.js')) {
    process.stderr.write(
      `osprey: ${entry.pathname} is missing; build it with \`npx tsc -p .\` in the repository\n`,
    );
    process.exit(1);
  }
  throw err;
}
cli.main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`osprey: ${err?.stack ?? err}\n`);
    process.exit(1);
  },
);

// Bundles the CLI's client commands (everything but `osprey agent`) from the
// compiled dist/ into one CommonJS file, dist/src/cli/osprey-cli.cjs, that
// bin/cli.cjs loads. Why: Node 20 starts a command whose code is CommonJS in
// one file ~17 ms sooner than the same code as ES modules (no ESM loader,
// which also loads fs/promises, streams and readline for itself, and one
// compile instead of one resolution, read and compile per module):
// `osprey policy list` 84.6 -> 66.6 ms, `osprey version` 73.8 -> 56.6
// (median of 40 runs each, interleaved). The agent stays ES modules: the
// bundle imports dist/src/cli/agent.js when `osprey agent` is run through it.
//
// Run after tsc (scripts/setup.sh, test.sh and `npm run build` do); a bundle
// older than the compiled main.js is not used (bin/cli.cjs). `osprey policy
// validate` imports dist/src/cli/policy-validate.js the same way: it needs
// the policy compiler, which the client commands do not.
import { build } from 'esbuild';

const result = await build({
  entryPoints: ['dist/src/cli/main.js'],
  outfile: 'dist/src/cli/osprey-cli.cjs',
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  // npm packages load from node_modules as they are; the agent's modules as ES modules
  packages: 'external',
  external: ['./agent.js', './policy-validate.js'],
  // the bundle sits where main.js does, so a path made from a module's own
  // URL (the repository root, three levels up) comes out the same
  define: { 'import.meta.url': '__osprey_module_url' },
  banner: { js: "const __osprey_module_url = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'silent',
});
const problems = [...result.errors, ...result.warnings];
if (problems.length) {
  for (const p of problems) {
    const at = p.location ? `${p.location.file}:${p.location.line}: ` : '';
    process.stderr.write(`bundle-cli: ${at}${p.text}\n`);
  }
  process.exit(1);
}

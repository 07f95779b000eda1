import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { BUNDLED_CONFIG, loadAgentConfig } from '../../src/agent/config.js';
import { UserError } from '../../src/agent/fs-util.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'osprey-config-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(text: string): string {
  const p = path.join(dir, `c${++n}.yaml`);
  writeFileSync(p, text);
  return p;
}
const base = { defaultConfigFiles: [] as string[], stdoutIsTTY: false, hostname: 'node-a', cwd: '/work' };
const load = (argv: string[], opts = {}) => loadAgentConfig(argv, { ...base, ...opts }).config;

function throwsUser(f: () => unknown, re: RegExp, exitCode: number): void {
  assert.throws(f, (err: unknown) => {
    assert.ok(err instanceof UserError, `a UserError, got ${String(err)}`);
    assert.match(err.message, re);
    assert.equal(err.exitCode, exitCode);
    return true;
  });
}

describe('agent config', () => {
  it('has the documented defaults when no file is found', () => {
    assert.deepEqual(load([]), {
      configFile: undefined,
      exportFile: '/var/log/osprey/events.log',
      exportFileMaxSizeMb: 10,
      exportFileMaxBackups: 5,
      exportStdout: true,
      stdoutFormat: 'json',
      apiSocket: '/run/osprey/osprey.sock',
      argsMax: 4096,
      processCaps: true,
      processNs: true,
      capsNsEveryEvent: false,
      ringBufferMb: 4,
      ringHoldoffMs: 1,
      apiClientBufferMb: 32,
      cgroup: undefined,
      nodeName: 'node-a',
      seed: true,
      bpfStats: false,
      stateDir: '/var/lib/osprey',
      policy: [],
      storePath: '/var/lib/osprey/events.db',
      storeMaxAgeMs: 7 * 86_400_000,
      storeMaxSizeMb: 512,
      exportAllowlist: undefined,
      exportDenylist: undefined,
      fieldFilters: undefined,
      redactionFilters: undefined,
      exportRateLimit: -1,
      exportFileRotationIntervalMs: 0,
      exportFileCompress: false,
      metricsAddress: '127.0.0.1:2112',
      apiAddress: undefined,
      uiAddress: '127.0.0.1:2113',
      apiTokenFile: '/var/lib/osprey/api-token',
      workloadCgroup: undefined,
      workloads: [],
      networkFlows: 'all',
    });
  });

  it('derives the store and token paths from the state directory, and reads the service settings', () => {
    const c = load(['--state-dir', '/srv/o', '--store-max-age', '12h', '--api-address', ':8181']);
    assert.equal(c.storePath, '/srv/o/events.db');
    assert.equal(c.apiTokenFile, '/srv/o/api-token');
    assert.equal(c.storeMaxAgeMs, 12 * 3_600_000);
    assert.equal(c.apiAddress, ':8181');
    assert.equal(load(['--store-path', '']).storePath, undefined);
    assert.equal(load(['--no-metrics-address']).metricsAddress, undefined);
    const f = file(
      'store-max-age: 90\nexport-file-rotation-interval: 1h30m\nexport-allowlist:\n  - {binary_regex: [curl]}\n',
    );
    const fc = load(['--config', f]);
    assert.equal(fc.storeMaxAgeMs, 90_000);
    assert.equal(fc.exportFileRotationIntervalMs, 5_400_000);
    assert.deepEqual(fc.exportAllowlist, [{ binary_regex: ['curl'] }]);
    throwsUser(() => load(['--store-max-age', '7 days']), /--store-max-age: .*not a duration/, 2);
    throwsUser(() => load(['--metrics-address', 'localhost']), /--metrics-address: .*HOST:PORT/, 2);
    throwsUser(() => load(['--api-address', '1.2.3.4:99999']), /port "99999"/, 2);
  });

  it('reads the bundled config/osprey.yaml to the same values as the built-in defaults', () => {
    const fromFile = load(['--config', BUNDLED_CONFIG]);
    assert.deepEqual({ ...fromFile, configFile: undefined }, load([]));
    assert.equal(fromFile.configFile, BUNDLED_CONFIG);
  });

  it('uses the first default file that exists', () => {
    const f = file('args-max: 100\n');
    assert.equal(load([], { defaultConfigFiles: [path.join(dir, 'absent.yaml'), f] }).argsMax, 100);
  });

  it('lets flags override the file, and resolves relative paths', () => {
    const f = file(
      'args-max: 100\nexport-file: logs/ev.log\nexport-stdout: true\ncgroup: /sys/fs/cgroup/x\n',
    );
    const c = load([
      '--config',
      f,
      '--args-max',
      '200',
      '--no-export-stdout',
      '--api-socket',
      'run/o.sock',
      '--no-cgroup',
    ]);
    assert.equal(c.argsMax, 200);
    assert.equal(c.exportStdout, false);
    // relative to the config file in the file, to the cwd on the command line
    assert.equal(c.exportFile, path.join(dir, 'logs/ev.log'));
    assert.equal(c.apiSocket, '/work/run/o.sock');
    assert.equal(c.cgroup, undefined);
  });

  it('turns things off with empty values and --no- flags', () => {
    const c = load(['--export-file', '', '--no-seed', '--node-name', 'n1']);
    assert.equal(c.exportFile, undefined);
    assert.equal(c.seed, false);
    assert.equal(c.nodeName, 'n1');
    assert.equal(load(['--config', file('node-name: ""\nseed: false\n')]).nodeName, 'node-a');
  });

  it('picks the stdout format from the terminal when it is auto', () => {
    assert.equal(load([], { stdoutIsTTY: true }).stdoutFormat, 'compact');
    assert.equal(load([], { stdoutIsTTY: false }).stdoutFormat, 'json');
    assert.equal(load(['--stdout-format', 'compact']).stdoutFormat, 'compact');
    assert.equal(load(['--stdout-format', 'json'], { stdoutIsTTY: true }).stdoutFormat, 'json');
  });

  it('names an unknown flag (exit code 2)', () => {
    throwsUser(() => load(['--bogus']), /unknown flag --bogus$/, 2);
    throwsUser(
      () => load(['--ring-holdof-ms', '2']),
      /unknown flag --ring-holdof-ms; did you mean --ring-holdoff-ms\?/,
      2,
    );
    throwsUser(() => load(['--args-max']), /flag --args-max needs a value/, 2);
    throwsUser(() => load(['stray']), /unexpected argument "stray"/, 2);
    throwsUser(() => load(['--seed', '--no-seed']), /--seed and --no-seed contradict/, 2);
  });

  it('names the flag of a bad value', () => {
    throwsUser(
      () => load(['--args-max', 'lots']),
      /--args-max: expected an integer from 0 to 32767, got "lots"/,
      2,
    );
    throwsUser(() => load(['--args-max', '40000']), /--args-max: expected an integer/, 2);
    throwsUser(
      () => load(['--export-file-max-size-mb', '0']),
      /--export-file-max-size-mb: expected a number/,
      2,
    );
    throwsUser(() => load(['--stdout-format', 'xml']), /--stdout-format: expected json, compact or auto/, 2);
    throwsUser(() => load(['--ring-buffer-mb', '3']), /--ring-buffer-mb: expected a power of 2/, 2);
    throwsUser(
      () => load(['--ring-holdoff-ms', '500']),
      /--ring-holdoff-ms: expected an integer from 0 to 100/,
      2,
    );
    assert.equal(load(['--ring-buffer-mb', '16', '--ring-holdoff-ms', '0']).ringBufferMb, 16);
  });

  it('names the file, line and column of an unknown key, and suggests the near one', () => {
    const f = file('# comment\nargs-max: 10\nexport-flie: /tmp/x\n');
    throwsUser(
      () => load(['--config', f]),
      new RegExp(`^${f}:3:1: unknown key "export-flie"; did you mean "export-file"\\?`),
      1,
    );
    const g = file('zzz: 1\n');
    throwsUser(
      () => load(['--config', g]),
      new RegExp(`${g}:1:1: unknown key "zzz".*use one of: export-file,`),
      1,
    );
  });

  it('names the file, line and key of a value of the wrong type', () => {
    const f = file('seed: true\nargs-max: many\n');
    throwsUser(() => load(['--config', f]), new RegExp(`^${f}:2:11: args-max: expected an integer`), 1);
    const g = file('export-stdout: "yes"\n');
    throwsUser(
      () => load(['--config', g]),
      new RegExp(`^${g}:1:16: export-stdout: expected true or false`),
      1,
    );
  });

  it('reports YAML syntax errors and a file that is not a mapping with their position', () => {
    const f = file('args-max: 10\n  bad: [\n');
    throwsUser(() => load(['--config', f]), new RegExp(`^${f}:\\d+:\\d+: not valid YAML`), 1);
    const g = file('- a\n- b\n');
    throwsUser(() => load(['--config', g]), new RegExp(`^${g}:1:1: expected settings`), 1);
    const h = file('seed: true\nseed: false\n');
    throwsUser(() => load(['--config', h]), new RegExp(`^${h}:2:1: not valid YAML.*unique`), 1);
  });

  it('says what to do when --config does not exist', () => {
    throwsUser(
      () => load(['--config', path.join(dir, 'nope.yaml')]),
      /cannot read config file .*nope\.yaml: ENOENT: no such file or directory; give an existing file with --config/,
      1,
    );
  });

  it('treats an empty file as all defaults', () => {
    const c = load(['--config', file('# nothing\n')]);
    assert.equal(c.argsMax, 4096);
  });
});

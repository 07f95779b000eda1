// The state directory of run-time policies, the `policy` and `state-dir`
// settings, and the policy table of `osprey policy list`.
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { loadAgentConfig } from '../../src/agent/config.js';
import { UserError } from '../../src/agent/fs-util.js';
import type { PolicyInfo } from '../../src/agent/policies.js';
import { PolicyStore, type StoredPolicy } from '../../src/agent/policy-store.js';
import { renderPolicyTable } from '../../src/cli/policy.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'osprey-policy-store-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = () => path.join(dir, `state${++n}`);

const entry = (name: string, extra: Partial<StoredPolicy> = {}): StoredPolicy => ({
  name,
  file: `${name}.yaml`,
  mode: 'enforce',
  enabled: true,
  source: `/etc/${name}.yaml`,
  added_at: '2026-01-01T00:00:00.000Z',
  ...extra,
});

describe('PolicyStore', () => {
  it('reads nothing from a state directory that does not exist, and creates nothing', () => {
    const d = fresh();
    assert.deepEqual(new PolicyStore(d).read(), { policies: [] });
    assert.ok(!existsSync(d));
  });

  it('stores texts and the index, and reads them back', () => {
    const s = new PolicyStore(fresh());
    s.writeText('a.yaml', 'kind: TracingPolicy\n');
    s.save([entry('a'), entry('b', { mode: 'monitor', enabled: false })]);
    assert.deepEqual(s.read().policies, [entry('a'), entry('b', { mode: 'monitor', enabled: false })]);
    assert.equal(s.readText(entry('a')), 'kind: TracingPolicy\n');
    // no temporary files stay
    assert.deepEqual(readdirSync(s.dir).sort(), ['a.yaml', 'index.json']);
    s.removeText('a.yaml');
    s.removeText('a.yaml');
    assert.throws(() => s.readText(entry('a')), /cannot read stored policy .*a\.yaml: ENOENT/);
  });

  it('writes a text off the event loop atomically, and says where it could not', async () => {
    const s = new PolicyStore(fresh());
    await s.writeTextAsync('a.yaml', 'first\n');
    await s.writeTextAsync('a.yaml', 'second\n');
    assert.equal(s.readText(entry('a')), 'second\n');
    assert.deepEqual(readdirSync(s.dir), ['a.yaml']);
    // a directory where the file should go: the rename fails, the temporary file goes
    mkdirSync(path.join(s.dir, 'b.yaml'));
    await assert.rejects(s.writeTextAsync('b.yaml', 'x\n'), /cannot write .*b\.yaml: /);
    assert.deepEqual(readdirSync(s.dir).sort(), ['a.yaml', 'b.yaml']);
  });

  it('moves an index it cannot read aside instead of overwriting it', () => {
    const s = new PolicyStore(fresh());
    s.save([]);
    writeFileSync(s.indexPath, '{"version": 1, "policies": [{"name": 3}]}');
    const r = s.read();
    assert.deepEqual(r.policies, []);
    assert.match(
      r.warning ?? '',
      /is not a policy index \(policies\[0\] is not a stored policy\); moved it to/,
    );
    const aside = readdirSync(s.dir).find((f) => f.startsWith('index.json.bad-'));
    assert.ok(aside);
    assert.match(readFileSync(path.join(s.dir, aside), 'utf8'), /"name": 3/);
  });

  it('refuses an index that names a file outside its directory', () => {
    const s = new PolicyStore(fresh());
    s.save([]);
    writeFileSync(s.indexPath, JSON.stringify({ version: 1, policies: [entry('x', { file: '../x.yaml' })] }));
    assert.deepEqual(s.read().policies, []);
  });

  it('keeps file names short enough for the file system', () => {
    const s = new PolicyStore(fresh());
    assert.equal(s.fileFor('my-policy.v2'), 'my-policy.v2.yaml');
    const long = `a${'b'.repeat(251)}c`;
    const f = s.fileFor(long);
    assert.ok(f.length <= 255, f);
    assert.notEqual(f, s.fileFor(`${long.slice(0, 252)}d`));
  });

  it('says what to do when the state directory cannot be made', () => {
    const file = path.join(dir, 'a-file');
    writeFileSync(file, '');
    const s = new PolicyStore(path.join(file, 'state'));
    assert.throws(
      () => s.save([]),
      /cannot create the policy state directory .*; choose another with --state-dir/,
    );
  });
});

describe('agent settings: state-dir and policy', () => {
  const base = { defaultConfigFiles: [] as string[], stdoutIsTTY: false, hostname: 'n', cwd: '/work' };

  it('defaults to /var/lib/osprey and no start-up policies', () => {
    const c = loadAgentConfig([], base).config;
    assert.equal(c.stateDir, '/var/lib/osprey');
    assert.deepEqual(c.policy, []);
  });

  it('takes --policy several times, relative to the cwd', () => {
    const c = loadAgentConfig(
      ['--policy', 'p/a.yaml', '--policy', '/etc/p', '--state-dir', 'st'],
      base,
    ).config;
    assert.deepEqual(c.policy, ['/work/p/a.yaml', '/etc/p']);
    assert.equal(c.stateDir, '/work/st');
  });

  it('reads a path or a list from the file, relative to the file; the flag replaces it', () => {
    const f = path.join(dir, 'c.yaml');
    writeFileSync(f, 'policy:\n  - pols\n  - /abs/x.yaml\n');
    assert.deepEqual(loadAgentConfig(['--config', f], base).config.policy, [
      path.join(dir, 'pols'),
      '/abs/x.yaml',
    ]);
    writeFileSync(f, 'policy: one.yaml\n');
    assert.deepEqual(loadAgentConfig(['--config', f], base).config.policy, [path.join(dir, 'one.yaml')]);
    assert.deepEqual(loadAgentConfig(['--config', f, '--policy', 'b.yaml'], base).config.policy, [
      '/work/b.yaml',
    ]);
    assert.deepEqual(loadAgentConfig(['--config', f, '--no-policy'], base).config.policy, []);
  });

  it('names the line of a bad policy list', () => {
    const f = path.join(dir, 'bad.yaml');
    writeFileSync(f, 'args-max: 10\npolicy: [1, 2]\n');
    assert.throws(
      () => loadAgentConfig(['--config', f], base),
      (err: unknown) =>
        err instanceof UserError &&
        /bad\.yaml:2:\d+: policy: expected a path or a list of paths/.test(err.message),
    );
  });
});

describe('osprey policy list (text)', () => {
  const info = (name: string, extra: Partial<PolicyInfo> = {}): PolicyInfo => ({
    name,
    state: 'enabled',
    mode: 'enforce',
    source: 'api',
    file: `/p/${name}.yaml`,
    hooks: 2,
    programs: 2,
    added_at: '',
    memory_bytes: 2 * 1024 * 1024,
    counters: {
      events_posted: 12345,
      events_delivered: 12345,
      actions_taken: 1,
      actions_monitored: 0,
      actions_refused: 0,
      actions_failed: 0,
      rate_limited: 0,
      drops: 0,
      ringbuf_drops: 0,
      pending_drops: 0,
      decode_errors: 0,
      event_errors: 0,
      ring_pending_bytes: 0,
    },
    ...extra,
  });

  it('aligns a column per field and lists the reasons of errors below', () => {
    const text = renderPolicyTable([
      info('file-watch'),
      info('k', { state: 'disabled', counters: null, memory_bytes: 0 }),
      info('broken', { state: 'error', error: 'x.yaml:3:1: spec: bad', counters: null, memory_bytes: 0 }),
    ]);
    const lines = text.split('\n');
    assert.match(lines[0]!, /^NAME\s+STATE\s+MODE\s+SOURCE\s+HOOKS\s+EVENTS\s+ACTIONS\s+MONITORED/);
    assert.match(
      lines[1]!,
      /^file-watch\s+enabled\s+enforce\s+api\s+2\s+12345\s+1\s+0\s+0\s+0\s+0\s+2\.0 MiB$/,
    );
    assert.match(lines[2]!, /^k\s+disabled\s+enforce\s+api\s+2\s+-\s+-/);
    // every row as wide as the header
    const mode = lines[0]!.indexOf('MODE');
    assert.deepEqual(
      lines.slice(1, 4).map((l) => l.indexOf('enforce')),
      [mode, mode, mode],
    );
    assert.equal(lines.at(-1), 'broken: x.yaml:3:1: spec: bad');
  });

  it('says how to add a policy when there is none', () => {
    assert.match(renderPolicyTable([]), /osprey policy add FILE/);
  });
});

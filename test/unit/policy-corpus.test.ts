// The malformed and unsupported policy corpus: every file in
// test/fixtures/policies/bad must be refused with the error its first line
// announces:
//
//   # expect: <line>: <fieldPath substring>: <message regex>
//
// and the document with the error must yield no policy (bad documents name
// their policy "bad..."; a good document may share the file).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parsePolicyFile } from '../../src/policy/index.js';

const BAD = fileURLToPath(new URL('../../../test/fixtures/policies/bad/', import.meta.url));
const TRACEFS = '/sys/kernel/tracing';
const EXPECT = /^# expect: (\d+): ([^:]*): (.+)$/;

before(() => {
  if (!existsSync(path.join(TRACEFS, 'events'))) {
    execFileSync('mount', ['-t', 'tracefs', 'tracefs', TRACEFS]);
  }
});

const files = readdirSync(BAD)
  .filter((f) => f.endsWith('.yaml'))
  .sort();

test('the corpus has at least 35 policies', () => {
  assert.ok(files.length >= 35, `only ${files.length} files`);
});

for (const name of files) {
  test(name, () => {
    const file = path.join(BAD, name);
    const first = readFileSync(file, 'utf8').split('\n')[0]!;
    const m = EXPECT.exec(first);
    assert.ok(m, `${name}: first line must be "# expect: LINE: FIELD: REGEX", not ${JSON.stringify(first)}`);
    const [, line, field, pattern] = m;
    const re = new RegExp(pattern!);

    // default options: a kernel with tracepoints only, as on these machines
    const r = parsePolicyFile(file, { arch: 'x64' });
    assert.ok(r.errors.length > 0, `${name}: no error`);
    const all = r.errors.map(String).join('\n  ');
    const hit = r.errors.find(
      (e) => e.file === file && e.line === Number(line) && e.fieldPath.includes(field!) && re.test(e.message),
    );
    assert.ok(
      hit,
      `${name}: expected line ${line}, field ~ "${field}", message ~ /${pattern}/; got:\n  ${all}`,
    );
    assert.ok(hit.hint !== undefined);
    assert.ok(String(hit).startsWith(`${file}:${line}:${hit.column}: `));
    assert.deepEqual(
      r.policies.filter((p) => p.name.startsWith('bad')).map((p) => p.name),
      [],
      `${name}: the bad document yielded a policy`,
    );
    // single-document files yield nothing at all
    if (!name.startsWith('second-document')) assert.equal(r.policies.length, 0);
  });
}

test('a good document next to a bad one still loads', () => {
  const r = parsePolicyFile(path.join(BAD, 'second-document-bad.yaml'), { arch: 'x64' });
  assert.deepEqual(
    r.policies.map((p) => p.name),
    ['good-first'],
  );
});

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type ExportEvent, makeFilter, type Process } from '../../src/events/index.js';
import { EVENT_TYPES } from '../../src/events/types.js';

function proc(binary: string, args: string): Process {
  return {
    exec_id: 'x',
    pid: 1,
    uid: 0,
    cwd: '/',
    binary,
    arguments: args,
    flags: 'execve',
    start_time: 't',
    auid: 0,
    tid: 1,
  };
}

const base = { node_name: 'n', time: 't' };
const curl: ExportEvent = {
  process_exec: { process: proc('/usr/bin/curl', '-s https://evil.example') },
  ...base,
};
const curlExit: ExportEvent = {
  process_exit: { process: proc('/usr/bin/curl', '-s https://evil.example'), status: 0, time: 't' },
  ...base,
};
const ls: ExportEvent = { process_exec: { process: proc('/usr/bin/ls', '-l') }, ...base };
const kprobe = { process_kprobe: { process: proc('/usr/bin/cat', '/etc/shadow') }, ...base } as ExportEvent;
const flow = { flow: { verdict: 'FORWARDED' }, ...base } as ExportEvent;

describe('makeFilter', () => {
  test('no options: everything passes', () => {
    const f = makeFilter({});
    for (const ev of [curl, curlExit, ls, kprobe, flow]) assert.equal(f(ev), true);
    assert.equal(makeFilter({ eventTypes: [], process: '' })(flow), true);
  });

  test('event types match the top-level key, known or not', () => {
    const f = makeFilter({ eventTypes: ['process_exit', 'process_kprobe'] });
    assert.equal(f(curl), false);
    assert.equal(f(curlExit), true);
    assert.equal(f(kprobe), true);
    assert.equal(f(flow), false);
    assert.equal(makeFilter({ eventTypes: ['flow'] })(flow), true);
  });

  test('process regex searches binary and arguments', () => {
    assert.equal(makeFilter({ process: 'curl' })(curl), true);
    assert.equal(makeFilter({ process: 'curl' })(ls), false);
    assert.equal(makeFilter({ process: '^/usr/bin/curl -s' })(curl), true);
    assert.equal(makeFilter({ process: 'evil\\.example$' })(curlExit), true);
    assert.equal(makeFilter({ process: 'shadow' })(kprobe), true);
    assert.equal(makeFilter({ process: '.' })(flow), false, 'an event without a process does not match');
  });

  test('types and process combine with AND', () => {
    const f = makeFilter({ eventTypes: ['process_exec'], process: 'curl' });
    assert.equal(f(curl), true);
    assert.equal(f(curlExit), false);
    assert.equal(f(ls), false);
  });

  test('an invalid regex throws a message that names it', () => {
    assert.throws(
      () => makeFilter({ process: 'a(b' }),
      /process filter "a\(b" is not a valid regular expression/,
    );
  });

  test('an unknown event type throws, with the closest known one and the list', () => {
    assert.throws(
      () => makeFilter({ eventTypes: ['Process-Exec'] }),
      /unknown event type "Process-Exec": did you mean "process_exec"\? known types: process_exec, process_exit/,
    );
    assert.throws(() => makeFilter({ eventTypes: ['proces_kprob'] }), /did you mean "process_kprobe"/);
    assert.throws(
      () => makeFilter({ eventTypes: ['dns'] }),
      /^Error: unknown event type "dns": known types: /,
    );
    // every type Osprey emits, its network flows and the export's rate_limit_info too
    assert.ok(EVENT_TYPES.includes('flow') && EVENT_TYPES.includes('rate_limit_info'));
    for (const t of EVENT_TYPES) assert.doesNotThrow(() => makeFilter({ eventTypes: [t] }));
  });
});

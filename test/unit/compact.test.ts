import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type ExportEvent, type Process, renderCompact } from '../../src/events/index.js';

function proc(binary: string, args: string, pid = 10): Process {
  return {
    exec_id: 'x',
    pid,
    uid: 0,
    cwd: '/',
    binary,
    arguments: args,
    flags: 'execve',
    start_time: 't',
    auid: 0,
    tid: pid,
  };
}

const base = { node_name: 'n', time: 't' };

describe('renderCompact', () => {
  test('exec', () => {
    const ev: ExportEvent = { process_exec: { process: proc('/usr/bin/curl', '-s https://x') }, ...base };
    assert.equal(renderCompact(ev), '🚀 process /usr/bin/curl -s https://x');
  });

  test("control characters in a process's argv or binary are shown as escapes, never sent to the terminal", () => {
    // what a process could put in its argv to make its line vanish or look like another
    const ev: ExportEvent = {
      process_exec: {
        process: proc('/tmp/x\u001b[2K\rfake', 'a\nb\tc \u001b[31mred\u001b[0m \u007f\u009b \u00e9\u2713'),
      },
      ...base,
    };
    const line = renderCompact(ev);
    assert.equal(
      line,
      '🚀 process /tmp/x\\x1b[2K\\rfake a\\nb\\tc \\x1b[31mred\\x1b[0m \\x7f\\x9b \u00e9\u2713',
    );
    assert.doesNotMatch(line, /[\u0000-\u001f\u007f-\u009f]/);
  });

  test('exec without arguments has no trailing space', () => {
    const ev: ExportEvent = { process_exec: { process: proc('/usr/bin/true', '') }, ...base };
    assert.equal(renderCompact(ev), '🚀 process /usr/bin/true');
  });

  test('exit with a status, with a signal, without arguments', () => {
    const mk = (process: Process, signal?: string, status?: number): ExportEvent => ({
      process_exit: { process, signal, status, time: 't' },
      ...base,
    });
    assert.equal(
      renderCompact(mk(proc('/usr/bin/curl', '-s x'), undefined, 0)),
      '💥 exit    /usr/bin/curl -s x 0',
    );
    assert.equal(
      renderCompact(mk(proc('/usr/bin/sleep', '100'), 'SIGKILL')),
      '💥 exit    /usr/bin/sleep 100 SIGKILL',
    );
    assert.equal(renderCompact(mk(proc('/usr/bin/false', ''), undefined, 1)), '💥 exit    /usr/bin/false 1');
  });

  test('a process the cache never knew shows its pid', () => {
    const ev: ExportEvent = { process_exit: { process: proc('', '', 77), status: 0, time: 't' }, ...base };
    assert.equal(renderCompact(ev), '💥 exit    [pid 77] 0');
  });

  test('unknown types: the type, the process, the function when there is one', () => {
    const k = {
      process_lsm: { process: proc('/usr/bin/cat', '/etc/shadow'), function_name: 'file_open' },
      ...base,
    } as ExportEvent;
    assert.equal(renderCompact(k), '❓ process_lsm /usr/bin/cat /etc/shadow file_open');
    const bare = { flow: { verdict: 'DROPPED' }, ...base } as ExportEvent;
    assert.equal(renderCompact(bare), '❓ flow');
  });
});

// The web UI's logic that needs no browser: event descriptions, the pause
// buffer, the process index, the flow graph and policy error parsing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  describeEvent,
  type ExportEvent,
  enforcementClass,
  flowGraph,
  type HubbleFlow,
  PauseBuffer,
  ProcessIndex,
  parsePolicyError,
  processMatcher,
  toProcNode,
} from '../../web/model.js';

const proc = (execId: string, pid: number, binary: string, parent?: string, args = '') => ({
  exec_id: execId,
  pid,
  binary,
  arguments: args,
  uid: 0,
  cwd: '/',
  flags: 'execve',
  start_time: `2026-11-25T08:00:00.${String(pid).padStart(9, '0')}Z`,
  auid: 0,
  tid: pid,
  ...(parent ? { parent_exec_id: parent } : {}),
});

const exec = (p: ReturnType<typeof proc>, parent?: ReturnType<typeof proc>): ExportEvent => ({
  process_exec: { process: p, ...(parent ? { parent } : {}) },
  node_name: 'n',
  time: p.start_time,
});

const exit = (p: ReturnType<typeof proc>, extra: { status?: number; signal?: string } = {}): ExportEvent => ({
  process_exit: { process: p, time: '2026-11-25T08:00:01Z', ...extra },
  node_name: 'n',
  time: '2026-11-25T08:00:01Z',
});

describe('web UI model', () => {
  it('describes execs, exits, kprobes with their enforcement, and flows', () => {
    const sh = proc('a', 10, '/bin/sh', undefined, '-c true');
    assert.deepEqual(describeEvent(exec(sh)), { verb: 'exec', detail: '/bin/sh -c true', severity: 'info' });
    assert.deepEqual(describeEvent(exit(sh, { signal: 'SIGKILL' })), {
      verb: 'exit',
      detail: 'killed by SIGKILL',
      severity: 'danger',
    });
    assert.equal(describeEvent(exit(sh, { status: 3 })).severity, 'notice');
    const kp = {
      process_kprobe: {
        process: sh,
        function_name: '__x64_sys_openat',
        args: [{ int_arg: -100 }, { string_arg: '/etc/shadow', label: 'path' }],
        return: { int_arg: 3 },
        action: 'KPROBE_ACTION_SIGKILL',
        policy_name: 'p',
      },
      node_name: 'n',
      time: 't',
    } as ExportEvent;
    assert.deepEqual(describeEvent(kp), {
      verb: 'openat',
      detail: '-100 path="/etc/shadow" = 3',
      enforcement: 'SIGKILL',
      severity: 'danger',
    });
    // monitor mode: Post, with what it held back
    const held = JSON.parse(JSON.stringify(kp)) as { process_kprobe: Record<string, unknown> };
    held.process_kprobe['action'] = 'KPROBE_ACTION_POST';
    held.process_kprobe['monitored_action'] = 'KPROBE_ACTION_SIGKILL';
    assert.deepEqual(describeEvent(held as unknown as ExportEvent), {
      verb: 'openat',
      detail: '-100 path="/etc/shadow" = 3',
      enforcement: 'monitor: would SIGKILL',
      severity: 'notice',
    });
    assert.equal(enforcementClass('monitor: would SIGKILL'), 'tag tag-monitor');
    // refused (the target was PID 1, a kernel thread or the agent): Post, with what was not done
    const refused = JSON.parse(JSON.stringify(kp)) as { process_kprobe: Record<string, unknown> };
    refused.process_kprobe['action'] = 'KPROBE_ACTION_POST';
    refused.process_kprobe['refused_action'] = 'KPROBE_ACTION_SIGKILL';
    const r = describeEvent(refused as unknown as ExportEvent);
    assert.equal(r.enforcement, 'refused: SIGKILL (protected target)');
    assert.equal(r.severity, 'notice');
    assert.equal(enforcementClass(r.enforcement!), 'tag tag-monitor');
    assert.equal(enforcementClass('SIGKILL'), 'tag tag-enforce');
    const flow = {
      flow: {
        verdict: 'DROPPED',
        IP: { source: '10.0.0.1', destination: '10.0.0.2' },
        Summary: 'TCP connect',
      },
      node_name: 'n',
      time: 't',
    } as unknown as ExportEvent;
    assert.deepEqual(describeEvent(flow), {
      verb: 'flow',
      detail: 'TCP connect',
      enforcement: 'DROPPED',
      severity: 'danger',
    });
  });

  it('pause buffer keeps the newest up to its capacity and counts what it let go', () => {
    const b = new PauseBuffer<number>(3);
    b.push(1, 2);
    assert.equal(b.size, 2);
    b.push(3, 4, 5);
    assert.equal(b.size, 3);
    assert.equal(b.dropped, 2);
    for (let i = 6; i < 20; i++) b.push(i);
    assert.deepEqual(b.drain(), { items: [17, 18, 19], dropped: 16 });
    assert.deepEqual(b.drain(), { items: [], dropped: 0 });
    assert.throws(() => new PauseBuffer(0), /capacity 0 must be a positive integer/);
  });

  it('process index: ancestors, descendants, events, exits; bounded', () => {
    const idx = new ProcessIndex(4, 2);
    const init = proc('i', 1, '/sbin/init');
    const sh = proc('s', 10, '/bin/sh', 'i', '-c x');
    const sh2 = proc('s2', 11, '/bin/sh', 's');
    const cat = proc('c', 12, '/bin/cat', 's2', '/etc/passwd');
    idx.add(exec(sh, init));
    idx.add(exec(sh2, sh));
    idx.add(exec(cat, sh2));
    idx.add(exit(cat, { signal: 'SIGKILL' }));
    assert.deepEqual(
      idx.ancestors('c').map((n) => n.exec_id),
      ['s2', 's', 'i'],
    );
    assert.deepEqual(
      idx.descendants('s').map((d) => [d.exec_id, d.depth]),
      [
        ['s2', 1],
        ['c', 2],
      ],
    );
    assert.equal(idx.get('c')?.exit_signal, 'SIGKILL');
    assert.deepEqual(
      idx.events('c').map((e) => Object.keys(e)[0]),
      ['process_exec', 'process_exit'],
    );
    assert.deepEqual(
      idx.search('passwd').map((n) => n.exec_id),
      ['c'],
    );
    assert.deepEqual(
      idx.search('11').map((n) => n.exec_id),
      ['s2'],
    );
    // a fifth process pushes out the oldest
    idx.add(exec(proc('x', 13, '/bin/x', 'c'), cat));
    assert.equal(idx.size, 4);
    assert.equal(idx.evicted, 1);
    assert.equal(idx.get('i'), undefined, 'the oldest learned (init, from the first parent) goes first');
  });

  it('matches processes by pid or regex, and says when a query is neither', () => {
    const n = toProcNode(proc('a', 42, '/usr/bin/curl', undefined, 'https://x'))!;
    assert.ok(processMatcher('42')(n));
    assert.ok(!processMatcher('4')(n));
    assert.ok(processMatcher('curl.*https')(n));
    assert.throws(() => processMatcher('('), /not a pid nor a valid regular expression/);
  });

  it('reads processes from the store shape and from plain events', () => {
    const stored = toProcNode({
      exec_id: 'e',
      pid: 5,
      binary: '/b',
      arguments: '',
      exit_status: 1,
      process: proc('e', 5, '/b', 'p'),
    });
    assert.equal(stored?.parent_exec_id, 'p');
    assert.equal(stored?.exit_status, 1);
    assert.equal(toProcNode({ pid: 5 }), undefined);
  });

  it('graphs who talks to whom, dropped flows counted apart', () => {
    const f = (src: string, dst: string, port: number, verdict: string): HubbleFlow =>
      ({
        time: 't',
        verdict,
        IP: { source: '10.0.0.1', destination: dst, ipVersion: 'IPv4' },
        l4: { TCP: { source_port: 0, destination_port: port } },
        source: { identity: 1, labels: [], workload: src },
        destination: { identity: 2, labels: ['reserved:world'] },
        traffic_direction: 'EGRESS',
      }) as unknown as HubbleFlow;
    const g = flowGraph([
      f('web', '1.1.1.1', 443, 'FORWARDED'),
      f('web', '1.1.1.1', 443, 'FORWARDED'),
      f('web', '1.1.1.1', 22, 'DROPPED'),
      f('db', '1.1.1.1', 443, 'FORWARDED'),
    ]);
    assert.deepEqual(
      g.nodes.map((n) => [n.id, n.local]),
      [
        ['web', true],
        ['1.1.1.1', false],
        ['db', true],
      ],
    );
    assert.deepEqual(g.edges[0], {
      from: 'web',
      to: '1.1.1.1',
      forwarded: 2,
      dropped: 1,
      ports: ['TCP/443', 'TCP/22'],
    });
  });

  it('parses FILE:LINE:COL: field: message, and keeps other messages whole', () => {
    assert.deepEqual(
      parsePolicyError('editor.yaml:11:13: spec.kprobes[0].args[0].type: unknown arg type "x"'),
      {
        line: 11,
        col: 13,
        field: 'spec.kprobes[0].args[0].type',
        message: 'unknown arg type "x"',
        text: 'editor.yaml:11:13: spec.kprobes[0].args[0].type: unknown arg type "x"',
      },
    );
    assert.deepEqual(parsePolicyError('editor.yaml:2:1: not valid YAML: bad indentation'), {
      line: 2,
      col: 1,
      message: 'not valid YAML: bad indentation',
      text: 'editor.yaml:2:1: not valid YAML: bad indentation',
    });
    assert.deepEqual(parsePolicyError('the kernel refused it'), {
      message: 'the kernel refused it',
      text: 'the kernel refused it',
    });
  });
});

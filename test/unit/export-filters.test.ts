import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ExportEvent, Process } from '../../src/events/types.js';
import {
  ExportOptionError,
  ExportPipeline,
  FieldFilter,
  makeAllowDeny,
  parseFieldFilters,
  parseFilterList,
  parseRedactionFilters,
  RateLimiter,
  Redactor,
  redactText,
} from '../../src/export/index.js';

const T = '2026-01-10T12:00:00.000000000Z';

function proc(pid: number, binary: string, args = '', execId = `e${pid}`, parentExecId?: string): Process {
  const p: Process = {
    exec_id: execId,
    pid,
    uid: 0,
    cwd: '/',
    binary,
    arguments: args,
    flags: 'execve',
    start_time: T,
    auid: 0,
    tid: pid,
    cap: { permitted: ['CAP_SYS_ADMIN'], effective: ['CAP_SYS_ADMIN'] },
  };
  if (parentExecId) p.parent_exec_id = parentExecId;
  return p;
}
const exec = (p: Process, parent?: Process, ancestors?: Process[]): ExportEvent => ({
  process_exec: { process: p, ...(parent ? { parent } : {}), ...(ancestors ? { ancestors } : {}) },
  node_name: 'n1',
  time: T,
});
const exit = (p: Process): ExportEvent => ({
  process_exit: { process: p, time: T },
  node_name: 'n1',
  time: T,
});
const kprobe = (p: Process, policy: string): ExportEvent => ({
  process_kprobe: {
    process: p,
    function_name: '__x64_sys_openat',
    action: 'KPROBE_ACTION_POST',
    policy_name: policy,
  },
  node_name: 'n1',
  time: T,
});

const bash = proc(100, '/bin/bash', '-l');
const curl = proc(101, '/usr/bin/curl', '-s https://example.org', 'e101', 'e100');
const wget = proc(102, '/usr/bin/wget', 'https://example.org', 'e102', 'e100');
const sshd = proc(5, '/usr/sbin/sshd', '-D');

describe('export filter lists', () => {
  it('reads JSON lines, a JSON array, one object or parsed values alike', () => {
    const want = [{ binary_regex: ['curl'] }, { event_set: ['process_exit'] }];
    assert.deepEqual(
      parseFilterList('{"binary_regex":["curl"]}\n\n# a comment\n{"event_set":["PROCESS_EXIT"]}\n', 'allow'),
      want,
    );
    assert.deepEqual(
      parseFilterList('[{"binary_regex":["curl"]},{"event_set":["PROCESS_EXIT"]}]', 'allow'),
      want,
    );
    assert.deepEqual(parseFilterList({ binary_regex: 'curl' }, 'allow'), [want[0]]);
    assert.deepEqual(parseFilterList([{ pid: [1, '2'] }], 'allow'), [{ pid: [1, 2] }]);
    assert.deepEqual(parseFilterList('', 'allow'), []);
    assert.deepEqual(parseFilterList(undefined, 'allow'), []);
  });

  it('says which line and field is wrong', () => {
    const err = (input: unknown) => {
      try {
        parseFilterList(input, 'export allow list');
      } catch (e) {
        assert.ok(e instanceof ExportOptionError);
        return e.message;
      }
      assert.fail('no error');
    };
    assert.match(err('{"pid":[1]}\n{"pid": [2}'), /^export allow list: line 2 is not valid JSON \(/);
    assert.equal(
      err('{"binary_regex":["ok","(bad"]}'),
      'export allow list line 1: binary_regex[1]: "(bad" is not a valid regular expression: ' +
        'Invalid regular expression: /(bad/: Unterminated group',
    );
    assert.match(
      err('{"binary":["x"]}'),
      /^export allow list line 1: binary: unknown filter field; known fields: binary_regex, /,
    );
    assert.match(
      err([{ namespace: ['kube-system'] }]),
      /entry 1: namespace: not supported by Osprey \(Kubernetes namespaces/,
    );
    assert.match(err('{"pid":["one"]}'), /line 1: pid\[0\]: the string "one" is not a pid/);
    assert.match(
      err('{"event_set":["process exec"]}'),
      /event_set\[0\]: "process exec" is not an event type/,
    );
    assert.match(err('["not an object"]'), /entry 1: expected a JSON object, got the string "not an object"/);
    assert.match(err('{"binary_regex": 3}'), /binary_regex: expected a list of strings, got number 3/);
  });
});

describe('allow and deny lists', () => {
  const events = [
    exec(bash),
    exec(curl, bash),
    exec(wget, bash),
    exit(curl),
    kprobe(curl, 'net'),
    exec(sshd),
  ];
  const keep = (allow: unknown, deny: unknown) => {
    const pass = makeAllowDeny({
      allow: parseFilterList(allow, 'allow'),
      deny: parseFilterList(deny, 'deny'),
    });
    return events.filter(pass);
  };

  it('lets everything through with no lists', () => {
    assert.equal(keep(undefined, undefined).length, events.length);
  });

  it('ORs the filters of a list and ANDs the fields of a filter', () => {
    // exec events of curl or wget, or anything of sshd
    const out = keep(
      '{"event_set":["PROCESS_EXEC"],"binary_regex":["/(curl|wget)$"]}\n{"binary_regex":["sshd"]}',
      undefined,
    );
    assert.deepEqual(out, [events[1], events[2], events[5]]);
  });

  it('lets the deny list win', () => {
    assert.deepEqual(keep('{"binary_regex":["curl"]}', '{"event_set":["PROCESS_KPROBE"]}'), [
      events[1],
      events[3],
    ]);
    assert.deepEqual(keep(undefined, '{"parent_binary_regex":["bash$"]}'), [
      events[0],
      events[3],
      events[4],
      events[5],
    ]);
  });

  it('matches pid, arguments, policy names and parents; a missing field does not match', () => {
    assert.deepEqual(keep('{"pid":[5, 100]}', undefined), [events[0], events[5]]);
    assert.deepEqual(keep('{"arguments_regex":["^-s "]}', undefined), [events[1], events[3], events[4]]);
    assert.deepEqual(keep('{"policy_names":["net"]}', undefined), [events[4]]);
    assert.deepEqual(keep('{"parent_arguments_regex":["^-l$"]}', undefined), [events[1], events[2]]);
    const noProcess: ExportEvent = {
      rate_limit_info: { number_of_dropped_process_events: '1' },
      node_name: 'n',
      time: T,
    };
    const pass = makeAllowDeny({ allow: parseFilterList('{"binary_regex":[""]}', 'allow') });
    assert.equal(pass(noProcess), false);
  });

  it('follows a pid_set to descendants, even ones whose events name only their parent', () => {
    const child = proc(300, '/bin/sh', '', 'e300', 'e101');
    const grandchild = proc(301, '/bin/ls', '', 'e301', 'e300');
    const pass = makeAllowDeny({ allow: parseFilterList('{"pid_set":[101]}', 'allow') });
    assert.equal(pass(exec(bash)), false);
    assert.equal(pass(exec(curl, bash)), true);
    assert.equal(pass(exec(child, curl)), true, 'parent pid in the set');
    assert.equal(pass(exec(grandchild, child)), true, 'parent tracked');
    assert.equal(pass(exit(grandchild)), true, 'a tracked process');
    assert.equal(pass(exec(wget, bash)), false);
  });

  it('takes (?i) from filters written for Go', () => {
    const pass = makeAllowDeny({ allow: parseFilterList('{"binary_regex":["(?i)/USR/BIN/CURL"]}', 'allow') });
    assert.equal(pass(exec(curl)), true);
  });
});

describe('field filters', () => {
  it('keeps only the included fields of the listed event types', () => {
    const [spec] = parseFieldFilters(
      '{"event_set":["PROCESS_EXEC"],"fields":"process.binary, process.pid,parent.binary","action":"INCLUDE"}',
      'field filters',
    );
    const f = new FieldFilter(spec!);
    const ev = exec(curl, bash);
    const before = JSON.stringify(ev);
    assert.deepEqual(f.apply(ev, 'process_exec'), {
      process_exec: { process: { binary: '/usr/bin/curl', pid: 101 }, parent: { binary: '/bin/bash' } },
      node_name: 'n1',
      time: T,
    });
    assert.equal(JSON.stringify(ev), before, 'the shared event is untouched');
    const ex = exit(curl);
    assert.equal(f.apply(ex, 'process_exit'), ex, 'other types pass as they are');
  });

  it('removes excluded fields, through lists too, and can invert its event set', () => {
    const [spec] = parseFieldFilters(
      [
        {
          fields: ['process.cap', 'ancestors.arguments'],
          action: 'EXCLUDE',
          event_set: ['PROCESS_EXIT'],
          invert_event_set: true,
        },
      ],
      'field filters',
    );
    const f = new FieldFilter(spec!);
    const ev = exec(curl, bash, [bash, sshd]);
    const out = f.apply(ev, 'process_exec') as {
      process_exec: { process: Process; parent: Process; ancestors: Process[] };
    };
    assert.equal(out.process_exec.process.cap, undefined);
    assert.equal(out.process_exec.process.binary, '/usr/bin/curl');
    assert.deepEqual(out.process_exec.parent.cap, bash.cap, 'only the listed path');
    assert.deepEqual(
      out.process_exec.ancestors.map((a) => [a.binary, a.arguments]),
      [
        ['/bin/bash', undefined],
        ['/usr/sbin/sshd', undefined],
      ],
    );
    assert.deepEqual(curl.cap, { permitted: ['CAP_SYS_ADMIN'], effective: ['CAP_SYS_ADMIN'] });
    assert.equal(bash.arguments, '-l');
    const ex = exit(curl);
    assert.equal(f.apply(ex, 'process_exit'), ex, 'inverted: exit is the type it skips');
  });

  it('refuses what it cannot apply', () => {
    assert.throws(() => parseFieldFilters('{"fields":"process.binary","action":"KEEP"}', 'field filters'), {
      message: 'field filters line 1: action: expected "INCLUDE" or "EXCLUDE", got the string "KEEP"',
    });
    assert.throws(
      () => parseFieldFilters('{"fields":"process..pid"}', 'field filters'),
      /"process\.\.pid" is not a dotted field path/,
    );
    assert.throws(() => parseFieldFilters('{"action":"INCLUDE"}', 'field filters'), /"fields" is missing/);
    assert.throws(
      () => parseFieldFilters('{"fields":"a","invert_dir":true}', 'field filters'),
      /invert_dir: unknown field filter field/,
    );
  });
});

describe('redaction', () => {
  it('replaces what capture groups matched with *****', () => {
    const re = [/(?:--password|-p)(?:\s+|=)(\S+)/dg];
    assert.equal(redactText('mysql -u root --password=hunter2 db', re), 'mysql -u root --password=***** db');
    assert.equal(redactText('mysql -p hunter2 -p=x', re), 'mysql -p ***** -p=*****');
    assert.equal(redactText('nothing here', re), 'nothing here');
    // two groups, and nested ones, in one expression
    assert.equal(
      redactText('user=ana token=abc', [/user=(\w+) token=((\w)\w+)/dg]),
      'user=***** token=*****',
    );
  });

  it('redacts the arguments of the process, parent and ancestors of matching events, on a copy', () => {
    const secret = proc(200, '/usr/bin/mysql', '-u root --password=hunter2', 'e200', 'e100');
    const parent = proc(100, '/bin/bash', '-c "mysql --password=hunter2"');
    const r = new Redactor(
      parseRedactionFilters(
        '{"match":{"event_set":["PROCESS_EXEC"]},"redact":["--password=(\\\\S+?)(?:\\"|$|\\\\s)"]}',
        'redaction filters',
      ),
    );
    const ev = exec(secret, parent, [parent]);
    const out = r.apply(ev, 'process_exec') as {
      process_exec: { process: Process; parent: Process; ancestors: Process[] };
    };
    assert.equal(out.process_exec.process.arguments, '-u root --password=*****');
    assert.equal(out.process_exec.parent.arguments, '-c "mysql --password=*****"');
    assert.equal(out.process_exec.ancestors[0]!.arguments, '-c "mysql --password=*****"');
    assert.equal(secret.arguments, '-u root --password=hunter2', 'the original event is untouched');
    assert.equal(r.redacted, 1);
    const ex = exit(secret);
    assert.equal(r.apply(ex, 'process_exit'), ex, 'match limits it to exec events');
  });

  it('limits a filter to binaries, and refuses an expression that would redact nothing', () => {
    const r = new Redactor(
      parseRedactionFilters([{ binary_regex: ['curl$'], redact: ['(?i)token=(\\w+)'] }], 'rf'),
    );
    const a = proc(1, '/usr/bin/curl', '-H TOKEN=abc');
    const b = proc(2, '/usr/bin/wget', '-H TOKEN=abc');
    assert.equal(
      (r.apply(exec(a), 'process_exec') as { process_exec: { process: Process } }).process_exec.process
        .arguments,
      '-H TOKEN=*****',
    );
    assert.equal(
      (r.apply(exec(b), 'process_exec') as { process_exec: { process: Process } }).process_exec.process
        .arguments,
      '-H TOKEN=abc',
    );
    assert.throws(
      () => parseRedactionFilters('{"redact":["--password=\\\\S+"]}', 'redaction filters'),
      /redaction filters line 1: redact\[0\]: "--password=\\S\+" has no capture group, so it would redact nothing/,
    );
    assert.throws(
      () => parseRedactionFilters('{"redact":["("]}', 'rf'),
      /redact\[0\]: "\(" is not a valid regular expression/,
    );
    assert.throws(
      () => parseRedactionFilters('{"match":{"pods":["x"]},"redact":["(x)"]}', 'rf'),
      /match\[0\]: pods: unknown filter field/,
    );
  });
});

describe('rate limit', () => {
  it('passes N a minute, drops the rest and reports them once per interval', () => {
    const rl = new RateLimiter({ eventsPerMinute: 5, nodeName: 'n1' });
    const t0 = Date.parse('2026-01-10T12:00:00Z');
    const passed = Array.from({ length: 8 }, () => rl.allow(t0)).filter(Boolean).length;
    assert.equal(passed, 5);
    assert.equal(rl.dropped, 3);
    assert.equal(rl.takeInfo(t0 + 30_000), undefined, 'not before the interval is over');
    // 12 s later one token is back
    assert.equal(rl.allow(t0 + 12_000), true);
    assert.equal(rl.allow(t0 + 12_000), false);
    assert.deepEqual(rl.takeInfo(t0 + 60_000), {
      rate_limit_info: { number_of_dropped_process_events: '4' },
      node_name: 'n1',
      time: '2026-01-10T12:01:00.000000000Z',
    });
    assert.equal(rl.takeInfo(t0 + 60_001), undefined, 'once per interval');
    assert.equal(rl.takeInfo(t0 + 130_000), undefined, 'nothing dropped, nothing said');
    assert.throws(
      () => new RateLimiter({ eventsPerMinute: 0, nodeName: 'n' }),
      /must be a whole number of events per minute >= 1/,
    );
  });
});

describe('ExportPipeline', () => {
  it('filters, then rate-limits what would be exported, then redacts and filters fields', () => {
    const p = ExportPipeline.fromOptions({
      nodeName: 'n1',
      denyList: '{"binary_regex":["sshd"]}',
      redactionFilters: '{"redact":["https://([^/]+)"]}',
      fieldFilters: '{"fields":"process.binary,process.arguments","action":"INCLUDE"}',
      rateLimitPerMinute: 2,
    });
    assert.ok(p.active);
    const t0 = Date.parse('2026-01-10T12:00:00Z');
    // sshd is denied and takes no token; curl and wget pass; bash is over the limit
    const out = p.apply([exec(sshd), exec(curl), exec(wget), exec(bash)], t0);
    assert.deepEqual(out, [
      {
        process_exec: { process: { binary: '/usr/bin/curl', arguments: '-s https://*****' } },
        node_name: 'n1',
        time: T,
      },
      {
        process_exec: { process: { binary: '/usr/bin/wget', arguments: 'https://*****' } },
        node_name: 'n1',
        time: T,
      },
    ]);
    assert.deepEqual(p.stats(), {
      passed: 2,
      filtered_out: 1,
      rate_limited: 1,
      redacted: 2,
      rate_limit_info_sent: 0,
    });
    // a minute later the report comes first
    const next = p.apply([exec(bash)], t0 + 60_000);
    assert.deepEqual(next[0], {
      rate_limit_info: { number_of_dropped_process_events: '1' },
      node_name: 'n1',
      time: '2026-01-10T12:01:00.000000000Z',
    });
    assert.equal(next.length, 2);
    assert.deepEqual(p.due(t0 + 200_000), []);
  });

  it('is inactive without options, and names the option in errors', () => {
    assert.equal(ExportPipeline.fromOptions({ nodeName: 'n' }).active, false);
    assert.equal(ExportPipeline.fromOptions({ nodeName: 'n', rateLimitPerMinute: -1 }).active, false);
    assert.throws(() => ExportPipeline.fromOptions({ nodeName: 'n', allowList: '{"pid": 1}' }), {
      message: 'export allow list line 1: pid: expected a list of pids, got number 1',
    });
    assert.throws(
      () => ExportPipeline.fromOptions({ nodeName: 'n', denyList: '{"x":1}' }),
      /export deny list line 1: x: unknown filter field/,
    );
    assert.throws(
      () => ExportPipeline.fromOptions({ nodeName: 'n', rateLimitPerMinute: 1.5 }),
      /export rate limit 1.5 must be a whole number of events per minute >= 1 \(or -1 for no limit\)/,
    );
  });
});

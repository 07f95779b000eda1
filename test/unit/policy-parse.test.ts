// TracingPolicy parsing: Tetragon's own policies and Osprey's positive
// fixtures validate against this kernel's tracepoints into the expected model.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  type Hook,
  parsePolicyFile,
  parsePolicyText,
  parseTracepointFormat,
  type SyscallHook,
  type TracepointHook,
  type TracingPolicy,
} from '../../src/policy/index.js';
import { fitInteger, parseCidr, parseInteger, parseRateLimit } from '../../src/policy/values.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url));
const TETRAGON = path.join(FIXTURES, 'tetragon');
const GOOD = path.join(FIXTURES, 'policies', 'good');
const TRACEFS = '/sys/kernel/tracing';
// syscall numbers and entry-point names are per architecture; pin them
const OPTS = { arch: 'x64' };

before(() => {
  if (!existsSync(path.join(TRACEFS, 'events'))) {
    execFileSync('mount', ['-t', 'tracefs', 'tracefs', TRACEFS]);
  }
});

function parseOk(file: string, opts = OPTS): TracingPolicy[] {
  const r = parsePolicyFile(file, opts);
  assert.deepEqual(r.errors.map(String), [], `${file} should have no errors`);
  return r.policies;
}

function only(file: string): TracingPolicy {
  const ps = parseOk(file);
  assert.equal(ps.length, 1);
  return ps[0]!;
}

function syscallHook(h: Hook | undefined): SyscallHook {
  assert.equal(h?.kind, 'syscall');
  return h as SyscallHook;
}

function tracepointHook(h: Hook | undefined): TracepointHook {
  assert.equal(h?.kind, 'tracepoint');
  return h as TracepointHook;
}

describe('Tetragon fixtures', () => {
  test('openat_write.yaml: syscall kprobe with return arg, on sys_enter/sys_exit_openat', () => {
    const p = only(path.join(TETRAGON, 'openat_write.yaml'));
    assert.equal(p.name, 'sys-openat');
    assert.equal(p.kind, 'TracingPolicy');
    assert.equal(p.mode, 'enforce');
    const h = syscallHook(p.hooks[0]);
    assert.equal(h.call, 'sys_openat');
    assert.equal(h.syscalls.length, 1);
    const t = h.syscalls[0]!;
    assert.equal(t.name, 'openat');
    assert.equal(t.functionName, '__x64_sys_openat');
    assert.equal(t.nr, 257);
    assert.equal(t.enter.event, 'sys_enter_openat');
    assert.equal(t.exit?.event, 'sys_exit_openat');
    assert.equal(h.needsExit, true);
    assert.deepEqual(
      h.tracepoints.map((tp) => `${tp.subsystem}/${tp.event}`),
      ['syscalls/sys_enter_openat', 'syscalls/sys_exit_openat'],
    );
    assert.deepEqual(
      h.args.map((a) => [a.index, a.type, a.field?.name]),
      [
        [0, 'int', 'dfd'],
        [1, 'string', 'filename'],
        [2, 'int', 'flags'],
      ],
    );
    // syscall args are 8-byte slots after __syscall_nr
    assert.deepEqual(
      h.args.map((a) => [a.field?.formatIndex, a.field?.offset, a.field?.size]),
      [
        [5, 16, 8],
        [6, 24, 8],
        [7, 32, 8],
      ],
    );
    assert.equal(h.returnArg?.type, 'int');
    assert.equal(h.returnArg?.field?.name, 'ret');
    assert.equal(h.returnArg?.field?.offset, 16);

    assert.equal(h.selectors.length, 1);
    const s = h.selectors[0]!;
    const { source, ...equal } = s.matchArgs[0]!;
    assert.deepEqual(equal, {
      argPosition: 1,
      argType: 'string',
      operator: 'Equal',
      value: { kind: 'strings', values: ['/etc/passwd'] },
    });
    assert.deepEqual([source.line, source.fieldPath], [27, 'spec.kprobes[0].selectors[0].matchArgs[0]']);
    assert.equal(s.matchArgs[1]!.operator, 'Mask');
    assert.deepEqual(s.matchArgs[1]!.value, { kind: 'ints', values: [64n, 1n, 2n] });
    assert.equal(s.matchReturnArgs[0]!.operator, 'GT');
    assert.equal(s.matchReturnArgs[0]!.argPosition, -1);
    assert.deepEqual(s.matchReturnArgs[0]!.value, { kind: 'ints', values: [0n] });
    // no matchActions: the event is posted, nothing enforced
    assert.deepEqual(s.onMatch, { post: { rateLimitMs: undefined, rateLimitScope: 'thread' }, enforce: [] });
    assert.equal(s.onReturn, undefined);
  });

  test('raw_syscalls.yaml: tracepoint arg index counts the format fields', () => {
    const p = only(path.join(TETRAGON, 'raw_syscalls.yaml'));
    assert.equal(p.name, 'raw-syscalls');
    const h = tracepointHook(p.hooks[0]);
    assert.equal(h.subsystem, 'raw_syscalls');
    assert.equal(h.event, 'sys_enter');
    assert.ok(h.tracepoint.id > 0);
    const { source, ...arg } = h.args[0]!;
    assert.deepEqual(arg, {
      position: 0,
      index: 4,
      type: 'syscall64',
      label: undefined,
      maxData: false,
      returnCopy: false,
      sizeArgIndex: undefined,
      field: { name: 'id', ctype: 'long', formatIndex: 4, offset: 8, size: 8, signed: true },
      sizeField: undefined,
    });
    assert.deepEqual([source.line, source.fieldPath], [11, 'spec.tracepoints[0].args[0]']);
    assert.deepEqual(h.selectors, []);
  });

  test('sys_setuid.yaml: enter tracepoint only', () => {
    const p = only(path.join(TETRAGON, 'sys_setuid.yaml'));
    const h = syscallHook(p.hooks[0]);
    assert.equal(h.syscalls[0]!.name, 'setuid');
    assert.equal(h.needsExit, false);
    assert.equal(h.syscalls[0]!.exit, undefined);
    assert.deepEqual(
      h.tracepoints.map((t) => t.event),
      ['sys_enter_setuid'],
    );
    assert.equal(h.args[0]!.field?.name, 'uid');
  });

  test('write.yaml: char_buf sized by sizeArgIndex, matchPIDs and matchArgs', () => {
    const p = only(path.join(TETRAGON, 'write.yaml'));
    const h = syscallHook(p.hooks[0]);
    const buf = h.args[1]!;
    assert.equal(buf.type, 'char_buf');
    assert.equal(buf.sizeArgIndex, 3);
    assert.equal(buf.field?.name, 'buf');
    assert.equal(buf.sizeField?.name, 'count');
    assert.equal(buf.sizeField?.offset, 32);
    assert.equal(h.args[2]!.type, 'size_t');
    const s = h.selectors[0]!;
    assert.deepEqual(
      s.matchPIDs.map(({ source: _, ...f }) => f),
      [{ operator: 'NotIn', values: [1], followForks: true, isNamespacePID: true }],
    );
    assert.deepEqual(s.matchArgs[0]!.value, { kind: 'ints', values: [1n] });
  });

  test('sigkill_tracepoint.yaml.tmpl, filled in: Sigkill on sys_enter_lseek whence', () => {
    const tmpl = readFileSync(path.join(TETRAGON, 'sigkill_tracepoint.yaml.tmpl'), 'utf8');
    const text = tmpl.replace('{{.MatchedPID}}', '4242').replace('{{.NamespacePID}}', 'false');
    const r = parsePolicyText(text, 'sigkill_tracepoint.yaml', OPTS);
    assert.deepEqual(r.errors.map(String), []);
    const p = r.policies[0]!;
    assert.equal(p.name, 'sigkilltest');
    const h = tracepointHook(p.hooks[0]);
    assert.equal(`${h.subsystem}/${h.event}`, 'syscalls/sys_enter_lseek');
    const whence = h.args[0]!;
    assert.equal(whence.index, 7);
    assert.equal(whence.type, 'int32');
    assert.equal(whence.field?.name, 'whence');
    assert.equal(whence.field?.offset, 32);
    const s = h.selectors[0]!;
    assert.equal(s.matchPIDs[0]!.operator, 'In');
    assert.deepEqual(s.matchPIDs[0]!.values, [4242]);
    assert.equal(s.matchPIDs[0]!.isNamespacePID, false);
    assert.equal(s.matchPIDs[0]!.followForks, false);
    assert.equal(s.matchArgs[0]!.argPosition, 0);
    assert.deepEqual(s.matchArgs[0]!.value, { kind: 'ints', values: [5555n] });
    assert.deepEqual(
      s.onMatch.enforce.map((a) => a.action),
      ['Sigkill'],
    );
    // Sigkill does not suppress the event
    assert.ok(s.onMatch.post);
  });

  test('the unfilled template is refused at the YAML parser, not crashed on', () => {
    const r = parsePolicyFile(path.join(TETRAGON, 'sigkill_tracepoint.yaml.tmpl'), OPTS);
    assert.equal(r.policies.length, 0);
    assert.ok(r.errors.length > 0);
  });
});

describe('selectors', () => {
  test('process filters, string operators, rate-limited Post, Sigkill with NoPost, monitor mode', () => {
    const p = only(path.join(GOOD, 'selectors.yaml'));
    assert.equal(p.kind, 'TracingPolicyNamespaced');
    assert.equal(p.namespace, 'prod');
    assert.deepEqual(p.labels, { team: 'sec' });
    assert.equal(p.mode, 'monitor');
    const h = syscallHook(p.hooks[0]);
    assert.equal(h.message, 'sensitive file opened');
    assert.deepEqual(h.tags, ['file', 'observability']);
    assert.equal(h.args[1]!.label, 'path');
    const [s0, s1] = h.selectors;
    assert.deepEqual(
      s0!.matchArgs.map((f) => [f.argPosition, f.operator, f.value]),
      [
        [1, 'Prefix', { kind: 'strings', values: ['/etc/'] }],
        [1, 'NotPostfix', { kind: 'strings', values: ['.conf'] }],
        // `args: [2]` names by position; 0100 is octal as in Go
        [2, 'Mask', { kind: 'ints', values: [0x241n, 2n, 64n] }],
      ],
    );
    assert.deepEqual(
      s0!.matchBinaries.map((b) => [b.operator, b.values]),
      [['NotIn', ['/usr/bin/cat']]],
    );
    assert.deepEqual(
      s0!.matchParentBinaries.map((b) => [b.operator, b.values]),
      [['Postfix', ['sshd']]],
    );
    assert.deepEqual(s0!.matchPIDs[0]!.values, [0, 1]);
    assert.deepEqual(
      s0!.matchNamespaces.map((n) => [n.namespace, n.operator, n.values]),
      [
        ['Mnt', 'In', ['host_ns', 4026531841]],
        ['Pid', 'NotIn', [4026531836]],
      ],
    );
    const [c0, c1] = s0!.matchCapabilities;
    assert.equal(c0!.type, 'Effective');
    assert.deepEqual(c0!.values, ['CAP_SYS_ADMIN', 'CAP_NET_RAW']);
    assert.equal(c0!.mask, (1n << 21n) | (1n << 13n));
    assert.equal(c1!.type, 'Permitted');
    assert.equal(c1!.isNamespaceCapability, true);
    assert.equal(c1!.mask, 1n << 39n);
    assert.deepEqual(s0!.onMatch, { post: { rateLimitMs: 60_000, rateLimitScope: 'process' }, enforce: [] });

    assert.equal(s1!.matchArgs[0]!.operator, 'SubString');
    assert.equal(s1!.onMatch.post, undefined);
    assert.deepEqual(
      s1!.onMatch.enforce.map((a) => a.action),
      ['Sigkill'],
    );
  });

  test('sockaddr: CIDRs, ports, families, privileged ports; Signal by name', () => {
    const p = only(path.join(GOOD, 'network.yaml'));
    const connect = syscallHook(p.hooks[0]);
    const [daddr, dport, family, priv] = connect.selectors[0]!.matchArgs;
    assert.equal(daddr!.value.kind, 'cidrs');
    if (daddr!.value.kind === 'cidrs') {
      const c = daddr!.value.cidrs;
      assert.deepEqual(
        c.map((x) => [x.family, x.prefixLength]),
        [
          [4, 8],
          [4, 32],
          [6, 32],
          [6, 128],
        ],
      );
      assert.deepEqual([...c[0]!.address], [10, 0, 0, 0]);
      assert.deepEqual([...c[2]!.address.slice(0, 4)], [0x20, 0x01, 0x0d, 0xb8]);
      assert.deepEqual([...c[3]!.address], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3]);
    }
    assert.deepEqual(dport!.value, {
      kind: 'ports',
      ranges: [
        { min: 443n, max: 443n },
        { min: 8000n, max: 8999n },
      ],
    });
    assert.deepEqual(family!.value, { kind: 'families', values: [2, 10] });
    assert.deepEqual([priv!.operator, priv!.value], ['NotSPortPriv', { kind: 'none' }]);
    const sig = connect.selectors[0]!.onMatch.enforce[0]!;
    assert.equal(sig.action, 'Signal');
    assert.equal(sig.action === 'Signal' && sig.signal, 15);
    // spelt as the entry point, without syscall: true, it is still a syscall
    const bind = syscallHook(p.hooks[1]);
    assert.equal(bind.syscalls[0]!.name, 'bind');
    assert.equal(bind.selectors[0]!.matchArgs[0]!.operator, 'SAddr');
  });

  test('lists: kprobe call list:, InMap list: on syscall64, enforcer, NotifyEnforcer', () => {
    const p = only(path.join(GOOD, 'lists.yaml'));
    const dups = p.lists.find((l) => l.name === 'dups')!;
    assert.deepEqual(
      dups.syscalls.map((s) => s.name),
      ['dup', 'dup2', 'dup3'],
    );
    const all = p.lists.find((l) => l.name === 'all')!;
    assert.equal(all.type, 'generated_syscalls');
    assert.ok(all.syscalls.length > 300, 'every syscall with a tracepoint');
    assert.deepEqual(
      p.enforcers[0]!.syscalls.map((s) => s.name),
      ['dup', 'dup2', 'dup3'],
    );

    const raw = tracepointHook(p.hooks[0]);
    const inMap = raw.selectors[0]!.matchArgs[0]!;
    assert.equal(inMap.operator, 'InMap');
    assert.deepEqual(inMap.value, {
      kind: 'set',
      values: [32n, 33n, 292n, 60n],
      ranges: [{ min: 0n, max: 3n }],
    });
    assert.equal(raw.selectors[0]!.matchBinaries[0]!.followChildren, true);
    assert.deepEqual(raw.selectors[0]!.onMatch.enforce[0], {
      action: 'NotifyEnforcer',
      signal: 9,
      error: undefined,
      source: raw.selectors[0]!.onMatch.enforce[0]!.source,
    });

    const k = syscallHook(p.hooks[1]);
    assert.equal(k.call, 'list:dups');
    assert.deepEqual(
      k.syscalls.map((s) => s.functionName),
      ['__x64_sys_dup', '__x64_sys_dup2', '__x64_sys_dup3'],
    );
    assert.equal(k.tracepoints.length, 3);
  });

  test('return: returnCopy, returnArg, matchReturnArgs, matchReturnActions, ranges, auto types', () => {
    const p = only(path.join(GOOD, 'return.yaml'));
    const read = syscallHook(p.hooks.find((h) => h.kind === 'syscall'));
    assert.equal(read.needsExit, true);
    assert.equal(read.syscalls[0]!.exit?.event, 'sys_exit_read');
    assert.equal(read.returnArgAction, 'Post');
    assert.equal(read.returnArg?.type, 'long');
    const buf = read.args[1]!;
    assert.equal(buf.returnCopy, true);
    assert.equal(buf.maxData, true);
    assert.equal(buf.sizeArgIndex, undefined);
    const s = read.selectors[0]!;
    assert.deepEqual(s.matchArgs[0]!.value, {
      kind: 'ranges',
      ranges: [
        { min: 0n, max: 2n },
        { min: 16n, max: 32n },
      ],
    });
    assert.deepEqual(s.matchArgs[1]!.value, { kind: 'ints', values: [4096n] });
    assert.deepEqual(s.matchReturnArgs[0]!.value, { kind: 'ranges', ranges: [{ min: -4095n, max: -1n }] });
    assert.deepEqual(
      s.onReturn?.enforce.map((a) => a.action),
      ['Sigkill'],
    );

    const lseek = tracepointHook(p.hooks.find((h) => h.kind === 'tracepoint'));
    assert.deepEqual(
      lseek.args.map((a) => [a.index, a.type, a.field?.name]),
      [
        [5, 'uint32', 'fd'],
        [7, 'uint32', 'whence'],
      ],
    );
    assert.deepEqual(lseek.selectors[0]!.matchArgs[1]!.value, {
      kind: 'set',
      values: [255n],
      ranges: [{ min: 0n, max: 2n }],
    });
  });

  test('an fd matches by its number or by the path it is open on', () => {
    const r = parsePolicyText(
      `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: fds
spec:
  kprobes:
  - call: sys_write
    syscall: true
    args:
    - index: 0
      type: fd
    selectors:
    - matchArgs:
      - index: 0
        operator: Equal
        values: [/etc/passwd, /etc/shadow]
    - matchArgs:
      - index: 0
        operator: NotEqual
        values: [0, 1, 2]
      - index: 0
        operator: Prefix
        values: [/etc/]
`,
      'fds.yaml',
      OPTS,
    );
    assert.deepEqual(r.errors.map(String), []);
    const [byPath, byNumber] = syscallHook(r.policies[0]!.hooks[0]).selectors;
    assert.deepEqual(byPath!.matchArgs[0]!.value, {
      kind: 'strings',
      values: ['/etc/passwd', '/etc/shadow'],
    });
    assert.deepEqual(byNumber!.matchArgs[0]!.value, { kind: 'ints', values: [0n, 1n, 2n] });
    assert.deepEqual(byNumber!.matchArgs[1]!.value, { kind: 'strings', values: ['/etc/'] });
  });

  test('several documents in one file are several policies; empty documents are skipped', () => {
    const ps = parseOk(path.join(GOOD, 'two-documents.yaml'));
    assert.deepEqual(
      ps.map((p) => p.name),
      ['first', 'second'],
    );
    assert.equal(ps[1]!.source.line, 11);
    const exit = tracepointHook(ps[1]!.hooks[0]);
    assert.equal(exit.args[0]!.field?.name, 'pid');
    assert.equal(exit.args[0]!.type, 'int32');
  });
});

describe('kernel capabilities', () => {
  const kprobe = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: k
spec:
  kprobes:
  - call: security_file_open
    selectors:
    - matchActions:
      - action: Override
        argError: -1
`;

  test('refused when the kernel lacks kprobes and bpf_override_return', () => {
    const r = parsePolicyText(kprobe, 'k.yaml');
    assert.equal(r.policies.length, 0);
    assert.deepEqual(
      r.errors.map((e) => [e.line, e.fieldPath, e.policy]),
      [
        [7, 'spec.kprobes[0].call', 'k'],
        [10, 'spec.kprobes[0].selectors[0].matchActions[0].action', 'k'],
      ],
    );
    assert.match(
      r.errors[0]!.message,
      /^policy "k": kprobe "security_file_open" needs kprobes \(CONFIG_KPROBES\)/,
    );
    assert.match(r.errors[1]!.message, /needs bpf_override_return/);
  });

  test('accepted as a kernel-function kprobe where the kernel has them', () => {
    const kernel = { kprobes: true, bpfLsm: false, fentry: false, overrideReturn: true };
    const r = parsePolicyText(kprobe, 'k.yaml', { kernel });
    assert.deepEqual(r.errors.map(String), []);
    const h = r.policies[0]!.hooks[0]!;
    assert.equal(h.kind, 'kprobe');
    assert.deepEqual(h.kind === 'kprobe' && h.functions, ['security_file_open']);
    assert.deepEqual(h.selectors[0]!.onMatch.enforce[0]!.action, 'Override');
  });
});

describe('tracefs root', () => {
  let root: string;
  before(() => {
    root = mkdtempSync(path.join(tmpdir(), 'osprey-tracefs-'));
    const dir = path.join(root, 'events', 'demo', 'thing');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      path.join(dir, 'format'),
      `name: thing
ID: 77
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:char comm[16];\toffset:8;\tsize:16;\tsigned:0;
\tfield:__data_loc char[] path;\toffset:24;\tsize:4;\tsigned:0;
\tfield:s64 delta;\toffset:32;\tsize:8;\tsigned:1;
\tfield:u32 saddr[4];\toffset:40;\tsize:16;\tsigned:0;
\tfield:__data_loc u8[] bytes;\toffset:56;\tsize:4;\tsigned:0;

print fmt: "x"
`,
    );
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  const policy = (index: number, type = ''): string => `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: demo
spec:
  tracepoints:
  - subsystem: demo
    event: thing
    args:
    - index: ${index}
${type ? `      type: ${type}\n` : ''}`;

  test('formats are read under the given root', () => {
    const r = parsePolicyText(policy(4), 'demo.yaml', { tracefsRoot: root });
    assert.deepEqual(r.errors.map(String), []);
    const h = tracepointHook(r.policies[0]!.hooks[0]);
    assert.equal(h.tracepoint.id, 77);
    assert.deepEqual(h.args[0]!.field, {
      name: 'delta',
      ctype: 's64',
      formatIndex: 4,
      offset: 32,
      size: 8,
      signed: true,
    });
    assert.equal(h.args[0]!.type, 'int64');
  });

  test('char arrays and __data_loc char[] fields are strings in the record; other arrays are refused, by name', () => {
    const r = parsePolicyText(policy(2, 'string'), 'demo.yaml', { tracefsRoot: root });
    assert.deepEqual(r.errors.map(String), []);
    assert.deepEqual(tracepointHook(r.policies[0]!.hooks[0]).args[0]!.field, {
      name: 'comm',
      ctype: 'char[16]',
      formatIndex: 2,
      offset: 8,
      size: 16,
      signed: false,
      inRecord: 'array',
    });
    const r2 = parsePolicyText(policy(3, 'string'), 'demo.yaml', { tracefsRoot: root });
    assert.deepEqual(r2.errors.map(String), []);
    assert.equal(tracepointHook(r2.policies[0]!.hooks[0]).args[0]!.field?.inRecord, 'data_loc');
    const auto = parsePolicyText(policy(2), 'demo.yaml', { tracefsRoot: root });
    assert.equal(tracepointHook(auto.policies[0]!.hooks[0]).args[0]!.type, 'string', 'inferred, as ints are');
    const asInt = parsePolicyText(policy(2, 'int'), 'demo.yaml', { tracefsRoot: root });
    assert.match(
      asInt.errors[0]!.message,
      /field comm \(char\[16\]\) is a string in the record: read it as type string/,
    );
    const ints = parsePolicyText(policy(5, 'string'), 'demo.yaml', { tracefsRoot: root });
    assert.match(ints.errors[0]!.message, /field saddr \(u32\[4\]\) is an array field of other than char/);
    const bytes = parsePolicyText(policy(6, 'string'), 'demo.yaml', { tracefsRoot: root });
    assert.match(
      bytes.errors[0]!.message,
      /field bytes \(__data_loc u8\[\]\) is a __data_loc \(dynamic\) field of other than char/,
    );
  });

  test('a format found is read once per process; one missing is looked for again', () => {
    const other = path.join(root, 'events', 'demo', 'later');
    const missing = parsePolicyText(policy(4).replace('event: thing', 'event: later'), 'demo.yaml', {
      tracefsRoot: root,
    });
    assert.match(missing.errors[0]!.message, /later/);
    mkdirSync(other);
    writeFileSync(
      path.join(other, 'format'),
      readFileSync(path.join(root, 'events', 'demo', 'thing', 'format')),
    );
    const found = parsePolicyText(policy(4).replace('event: thing', 'event: later'), 'demo.yaml', {
      tracefsRoot: root,
    });
    assert.deepEqual(found.errors.map(String), []);
    // once found, the format is not read again: a policy parses without the file
    rmSync(other, { recursive: true });
    const again = parsePolicyText(policy(4).replace('event: thing', 'event: later'), 'demo.yaml', {
      tracefsRoot: root,
    });
    assert.deepEqual(again.errors.map(String), []);
    assert.equal(tracepointHook(again.policies[0]!.hooks[0]).tracepoint.id, 77);
  });

  test('an unmounted tracefs is reported with the mount command', () => {
    const r = parsePolicyText(policy(4), 'demo.yaml', { tracefsRoot: path.join(root, 'nowhere') });
    assert.equal(r.policies.length, 0);
    assert.match(r.errors[0]!.message, /tracefs is not mounted at/);
    assert.match(r.errors[0]!.hint, /^mount it: mount -t tracefs tracefs /);
  });

  test('parseTracepointFormat reads every field, common ones included', () => {
    const f = parseTracepointFormat(
      readFileSync(`${TRACEFS}/events/syscalls/sys_enter_lseek/format`, 'utf8'),
      'syscalls',
      'sys_enter_lseek',
    );
    assert.deepEqual(
      f.fields.map((x) => x.name),
      [
        'common_type',
        'common_flags',
        'common_preempt_count',
        'common_pid',
        '__syscall_nr',
        'fd',
        'offset',
        'whence',
      ],
    );
    assert.deepEqual(f.fields.filter((x) => x.common).length, 4);
    const whence = f.fields[7]!;
    assert.deepEqual(
      [whence.type, whence.offset, whence.size, whence.signed],
      ['unsigned int', 32, 8, false],
    );
  });
});

describe('errors', () => {
  test('toString is FILE:LINE:COL: FIELD: message (hint)', () => {
    const r = parsePolicyText(
      'apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: x}\nspec:\n  kprobes:\n  - call: sys_setuid\n    syscal: true\n',
      'p.yaml',
    );
    assert.equal(r.errors.length, 1);
    assert.equal(
      String(r.errors[0]),
      'p.yaml:7:5: spec.kprobes[0].syscal: unknown field "syscal" in a kprobe (did you mean "syscall"?)',
    );
  });

  test('all errors of a document are reported, not only the first', () => {
    const r = parsePolicyText(
      `apiVersion: cilium.io/v1
kind: Policy
metadata:
  name: many
spec:
  kprobes:
  - call: sys_openat
    syscall: true
    args:
    - index: 9
      type: int
    - index: 1
      type: path
`,
      'many.yaml',
    );
    assert.deepEqual(
      r.errors.map((e) => [e.line, e.fieldPath]),
      [
        [1, 'apiVersion'],
        [2, 'kind'],
        [10, 'spec.kprobes[0].args[0].index'],
        [13, 'spec.kprobes[0].args[1].type'],
      ],
    );
  });

  test('a file that cannot be read is one error, not an exception', () => {
    const r = parsePolicyFile('/nonexistent/policy.yaml');
    assert.equal(r.policies.length, 0);
    assert.match(String(r.errors[0]), /^\/nonexistent\/policy\.yaml:1:1: cannot read: .*ENOENT/);
  });

  test('a file without a policy is an error', () => {
    const r = parsePolicyText('# nothing here\n', 'empty.yaml');
    assert.equal(r.errors[0]!.message, 'no policy in this file');
  });
});

describe('values', () => {
  test('integers are read as Go reads them', () => {
    const v = (s: string): bigint | undefined => {
      const p = parseInteger(s);
      return p.ok ? p.value : undefined;
    };
    assert.equal(v('42'), 42n);
    assert.equal(v('-5'), -5n);
    assert.equal(v('0x40'), 64n);
    assert.equal(v('0644'), 420n);
    assert.equal(v('0o17'), 15n);
    assert.equal(v('0b101'), 5n);
    assert.equal(v('18446744073709551615'), 0xffffffffffffffffn);
    assert.equal(v('08'), undefined);
    assert.equal(v('1e3'), undefined);
  });

  test('values fit the arg width, either signedness, normalized to the arg', () => {
    const fit = (n: bigint, bits: number, signed: boolean): bigint | string => {
      const p = fitInteger(n, bits, signed);
      return p.ok ? p.value : p.message;
    };
    assert.equal(fit(0xffffffffn, 32, true), -1n);
    assert.equal(fit(-1n, 32, false), 0xffffffffn);
    assert.equal(fit(127n, 8, true), 127n);
    assert.match(String(fit(256n, 8, false)), /does not fit in 8 bits/);
    assert.match(String(fit(-129n, 8, true)), /does not fit/);
  });

  test('CIDRs and rate limits', () => {
    const c = parseCidr('fe80::1:2/64');
    assert.ok(c.ok);
    if (c.ok) {
      assert.deepEqual([...c.value.address], [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2]);
      assert.equal(c.value.prefixLength, 64);
    }
    assert.equal(parseCidr('10.0.0.0/33').ok, false);
    assert.equal(parseCidr('fe80::1%eth0').ok, false);
    const ms = (s: string): number | undefined => {
      const p = parseRateLimit(s);
      return p.ok ? p.value : undefined;
    };
    assert.equal(ms('10'), 10_000);
    assert.equal(ms('100ms'), 100);
    assert.equal(ms('1m'), 60_000);
    assert.equal(ms('2h'), 7_200_000);
    assert.equal(ms('0s'), undefined);
    assert.equal(ms('1d'), undefined);
  });
});

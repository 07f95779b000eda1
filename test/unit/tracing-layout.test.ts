// The policy engine's tables and records are defined once in
// bpf/include/policy.h and mirrored in src/sensors/tracing/layout.ts: compile
// the header and compare every offset, size and constant.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../../src/kernel/native.js';
import * as L from '../../src/sensors/tracing/layout.js';
import { normalizeInt, parseCidr, strBucket } from '../../src/sensors/tracing/tables.js';

const STRUCTS: Record<string, Record<string, number>> = {
  osp_arg_spec: L.ARG_SPEC,
  osp_hook: L.HOOK,
  osp_filter: L.FILTER,
  osp_pid_filter: L.PID_FILTER,
  osp_ns_filter: L.NS_FILTER,
  osp_cap_filter: L.CAP_FILTER,
  osp_bin_filter: L.BIN_FILTER,
  osp_selector: L.SELECTOR,
  osp_config: L.CONFIG,
  osp_int_key: L.INT_KEY,
  osp_str_key: L.STR_KEY,
  osp_prefix_key: L.PREFIX_KEY,
  osp_postfix_key: L.POSTFIX_KEY,
  osp_addr_key: L.ADDR_KEY,
  osp_pending_key: L.PENDING_KEY,
  osp_needle: L.NEEDLE,
  osp_event: L.EVENT,
  osp_arg_rec: L.ARG_REC,
  osp_sockaddr: L.SOCKADDR,
};

/** TS name -> C constant, for every enum and limit */
const CONSTANTS: Record<string, [Record<string, number>, string]> = {
  OSP_LIMITS: [L.OSP_LIMITS, 'OSP_'],
  HookKind: [L.HookKind, 'OSP_HOOK_'],
  ArgType: [L.ArgType, 'OSP_ARG_'],
  Op: [L.Op, 'OSP_OP_'],
  SetOp: [L.SetOp, 'OSP_SET_'],
  Action: [L.Action, 'OSP_ACT_'],
  ActionResult: [L.ActionResult, 'OSP_RES_'],
  RateScope: [L.RateScope, 'OSP_RATE_'],
  Counter: [L.Counter, 'OSP_CNT_'],
  FilterFlag: [L.FilterFlag, 'OSP_FF_'],
  ArgFlag: [L.ArgFlag, 'OSP_ARGF_'],
  EventFlag: [L.EventFlag, 'OSP_EV_'],
};

function probe(): Map<string, number> {
  const lines: string[] = [];
  for (const [struct, layout] of Object.entries(STRUCTS)) {
    for (const field of Object.keys(layout)) {
      const expr = field === 'SIZE' ? `sizeof(struct ${struct})` : `offsetof(struct ${struct}, ${field})`;
      lines.push(`  printf("%s.%s=%llu\\n", "${struct}", "${field}", (unsigned long long)${expr});`);
    }
  }
  for (const [name, [values, prefix]] of Object.entries(CONSTANTS)) {
    for (const k of Object.keys(values)) {
      lines.push(`  printf("%s.%s=%llu\\n", "${name}", "${k}", (unsigned long long)${prefix}${k});`);
    }
  }
  lines.push('  printf("REC_TRACING=%d\\n", OSPREY_REC_TRACING);');
  const src = `#include <stddef.h>
#include <stdio.h>
#include "policy.h"
int main(void) {
${lines.join('\n')}
  return 0;
}
`;
  const dir = mkdtempSync(path.join(tmpdir(), 'osprey-tracing-layout-'));
  try {
    writeFileSync(path.join(dir, 'probe.c'), src);
    execFileSync('cc', [
      '-Wall',
      '-Werror',
      '-I',
      path.join(repoRoot, 'bpf/include'),
      path.join(dir, 'probe.c'),
      '-o',
      path.join(dir, 'probe'),
    ]);
    const got = new Map<string, number>();
    for (const line of execFileSync(path.join(dir, 'probe'), { encoding: 'utf8' }).trim().split('\n')) {
      const [k, v] = line.split('=');
      got.set(k!, Number(v));
    }
    return got;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('TypeScript layout matches bpf/include/policy.h: offsets, sizes, enums and limits', () => {
  const got = probe();
  for (const [struct, layout] of Object.entries(STRUCTS)) {
    for (const [field, off] of Object.entries(layout))
      assert.equal(off, got.get(`${struct}.${field}`), `${struct}.${field}`);
  }
  for (const [name, [values]] of Object.entries(CONSTANTS)) {
    for (const [k, v] of Object.entries(values)) assert.equal(v, got.get(`${name}.${k}`), `${name}.${k}`);
  }
  assert.equal(L.REC_TRACING, got.get('REC_TRACING'));
});

test('ints are normalized the way the kernel extends the field', () => {
  assert.equal(normalizeInt(-100n, 4, true), 0xffffffffffffff9cn);
  assert.equal(normalizeInt(-1n, 4, false), 0xffffffffn);
  assert.equal(normalizeInt(5555n, 8, false), 5555n);
  assert.equal(normalizeInt(0x1ffn, 1, false), 0xffn);
});

test('Equal buckets and CIDRs', () => {
  assert.deepEqual([0, 1, 32, 33, 4095].map(strBucket), [0, 0, 0, 1, 7]);
  const v4 = parseCidr('', '10.1.0.0/16');
  assert.deepEqual([v4.family, v4.bits, [...v4.addr.subarray(0, 4)]], [2, 16, [10, 1, 0, 0]]);
  const v6 = parseCidr('', '2001:db8::1');
  assert.equal(v6.bits, 128);
  assert.equal(v6.addr.toString('hex'), '20010db8000000000000000000000001');
  assert.equal(parseCidr('', '::ffff:1.2.3.4').addr.toString('hex'), '00000000000000000000ffff01020304');
  assert.throws(
    () => parseCidr('hook 0 selector 0 filter 1', '10.0.0.0/33'),
    /hook 0 selector 0 filter 1: "10.0.0.0\/33"/,
  );
});

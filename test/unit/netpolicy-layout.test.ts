// The network policy tables and flow record are defined once in
// bpf/include/netpolicy.h and mirrored in src/sensors/network/layout.ts:
// compile the header and compare every offset, size and constant.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../../src/kernel/native.js';
import * as L from '../../src/sensors/network/layout.js';

const STRUCTS: Record<string, Record<string, number>> = {
  np_verdict: L.VERDICT,
  np_config: L.CONFIG,
  np_workload: L.WORKLOAD,
  np_ipcache_key: L.IPCACHE_KEY,
  np_endpoint_key: L.ENDPOINT_KEY,
  np_endpoint: L.ENDPOINT,
  np_default_key: L.DEFAULT_KEY,
  np_peer_key: L.PEER_KEY,
  np_class: L.CLASS,
  np_cidr_key: L.CIDR_KEY,
  np_port_key: L.PORT_KEY,
  np_sock: L.SOCK,
  np_udp_peer_key: L.UDP_PEER_KEY,
  np_udp_peer: L.UDP_PEER,
  np_flow: L.FLOW,
};

const CONSTANTS: Record<string, [Record<string, number>, string]> = {
  Identity: [L.Identity, 'NP_ID_'],
  Direction: [L.Direction, 'NP_DIR_'],
  VerdictKind: [L.VerdictKind, 'NP_VERDICT_'],
  VerdictFlag: [L.VerdictFlag, 'NP_VF_'],
  FlowEvent: [L.FlowEvent, 'NP_EV_'],
  NP: [L.NP, 'NP_'],
  Counter: [L.Counter, 'NP_CNT_'],
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
  const src = `#include <stddef.h>\n#include <stdio.h>\n#include "netpolicy.h"\nint main(void) {\n${lines.join('\n')}\n  return 0;\n}\n`;
  const dir = mkdtempSync(path.join(tmpdir(), 'osprey-netpolicy-layout-'));
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

test('TypeScript layout matches bpf/include/netpolicy.h: offsets, sizes and constants', () => {
  const got = probe();
  for (const [struct, layout] of Object.entries(STRUCTS)) {
    for (const [field, off] of Object.entries(layout)) {
      assert.equal(off, got.get(`${struct}.${field}`), `${struct}.${field}`);
    }
  }
  for (const [name, [values]] of Object.entries(CONSTANTS)) {
    for (const [k, v] of Object.entries(values)) assert.equal(v, got.get(`${name}.${k}`), `${name}.${k}`);
  }
});

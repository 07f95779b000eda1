// The record layout is defined once in bpf/include/records.h and mirrored in
// src/sensors/process/layout.ts: compile the header and compare every offset.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../../src/kernel/native.js';
import { CONFIG, EXEC, EXIT, FORK, HDR, LIMITS, PROC, RecordType } from '../../src/sensors/process/layout.js';

type Layout = Record<string, number>;

function cProbe(structs: Record<string, Layout>): string {
  const lines: string[] = [];
  for (const [struct, layout] of Object.entries(structs)) {
    for (const field of Object.keys(layout)) {
      const expr = field === 'SIZE' ? `sizeof(struct ${struct})` : `offsetof(struct ${struct}, ${field})`;
      lines.push(`  printf("%s.%s=%zu\\n", "${struct}", "${field}", (size_t)${expr});`);
    }
  }
  return `#include <stddef.h>
#include <stdio.h>
#include "records.h"
int main(void) {
${lines.join('\n')}
  printf("const.PATH_MAX=%d\\nconst.ARGS_MAX=%d\\n", OSPREY_PATH_MAX, OSPREY_ARGS_MAX);
  printf("const.BINARY_MAX=%d\\n", OSPREY_BINARY_MAX);
  printf("const.EXEC=%d\\nconst.FORK=%d\\nconst.EXIT=%d\\n", OSPREY_REC_EXEC, OSPREY_REC_FORK, OSPREY_REC_EXIT);
  return 0;
}
`;
}

test('TypeScript record layout matches bpf/include/records.h', () => {
  const { BINARY_MAX, ...proc } = PROC;
  const structs = {
    osprey_hdr: HDR,
    osprey_exec: EXEC,
    osprey_fork: FORK,
    osprey_exit: EXIT,
    osprey_proc: proc,
  };
  const dir = mkdtempSync(path.join(tmpdir(), 'osprey-layout-'));
  try {
    const src = path.join(dir, 'probe.c');
    const bin = path.join(dir, 'probe');
    writeFileSync(src, cProbe({ ...structs, osprey_config: CONFIG }));
    execFileSync('cc', ['-Wall', '-Werror', '-I', path.join(repoRoot, 'bpf/include'), src, '-o', bin]);
    const got = new Map<string, number>();
    for (const line of execFileSync(bin, { encoding: 'utf8' }).trim().split('\n')) {
      const [k, v] = line.split('=');
      got.set(k!, Number(v));
    }
    for (const [struct, layout] of Object.entries({ ...structs, osprey_config: CONFIG })) {
      for (const [field, off] of Object.entries(layout)) {
        assert.equal(off, got.get(`${struct}.${field}`), `${struct}.${field}`);
      }
    }
    assert.equal(LIMITS.PATH_MAX, got.get('const.PATH_MAX'));
    assert.equal(BINARY_MAX, got.get('const.BINARY_MAX'));
    assert.equal(LIMITS.ARGS_MAX, got.get('const.ARGS_MAX'));
    assert.equal(RecordType.EXEC, got.get('const.EXEC'));
    assert.equal(RecordType.FORK, got.get('const.FORK'));
    assert.equal(RecordType.EXIT, got.get('const.EXIT'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

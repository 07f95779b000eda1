import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { parseListenAddress } from '../../src/agent/address.js';
import { defaults } from '../../src/agent/config.js';
import { formatDuration, parseDuration, parseTimeBound } from '../../src/agent/duration.js';
import { ExportOptions } from '../../src/agent/export-options.js';
import { UserError } from '../../src/agent/fs-util.js';
import { historyQuery } from '../../src/agent/history.js';
import { compareRoutes, documentedRoutes, openApiDocument } from '../../src/agent/openapi.js';
import { AgentStore } from '../../src/agent/store.js';
import { loadOrCreateToken, TcpApi } from '../../src/agent/tcp-api.js';
import type { ExportEvent } from '../../src/events/types.js';
import { EventStore } from '../../src/store/index.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'osprey-service-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('durations and addresses', () => {
  it('parses durations in the units operators write', () => {
    assert.equal(parseDuration('90s'), 90_000);
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('7d'), 7 * 86_400_000);
    assert.equal(parseDuration('2w'), 14 * 86_400_000);
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('30'), 30_000);
    assert.equal(parseDuration('0'), 0);
    assert.throws(
      () => parseDuration('7 days', '--store-max-age'),
      /--store-max-age "7 days" is not a duration/,
    );
    assert.throws(() => parseDuration(''), /not a duration/);
    assert.equal(formatDuration(5_400_000), '1h30m');
  });

  it('takes a time bound as a duration back from now or an RFC 3339 time', () => {
    const now = Date.parse('2026-11-25T10:00:00Z');
    assert.equal(parseTimeBound('1h', 'since', now), '2026-11-25T09:00:00.000Z');
    assert.equal(
      parseTimeBound('2026-11-25T08:13:22.123456789Z', 'since', now),
      '2026-11-25T08:13:22.123456789Z',
    );
    assert.throws(() => parseTimeBound('yesterday', 'since', now), /since "yesterday" is neither a duration/);
  });

  it('parses listen addresses, a bare port meaning loopback', () => {
    assert.deepEqual(parseListenAddress('127.0.0.1:2112', 'x'), { host: '127.0.0.1', port: 2112 });
    assert.deepEqual(parseListenAddress(':8181', 'x'), { host: '127.0.0.1', port: 8181 });
    assert.deepEqual(parseListenAddress('8181', 'x'), { host: '127.0.0.1', port: 8181 });
    assert.deepEqual(parseListenAddress('[::1]:9', 'x'), { host: '::1', port: 9 });
    assert.throws(
      () => parseListenAddress('::1:9', '--api-address'),
      /--api-address "::1:9" is not HOST:PORT/,
    );
    assert.throws(() => parseListenAddress('h:70000', 'x'), /port "70000"/);
  });
});

describe('history query parameters', () => {
  it('maps the parameters to a store query and an after-filter', () => {
    const now = Date.parse('2026-11-25T10:00:00Z');
    const { query, after: post } = historyQuery(
      {
        since: '30m',
        until: 'now',
        type: 'process_exec,process_exit',
        binary: 'curl$',
        policy: 'a,b',
        limit: '10',
      },
      now,
    );
    assert.deepEqual(query, {
      limit: 10,
      since: '2026-11-25T09:30:00.000Z',
      until: '2026-11-25T10:00:00.000Z',
      types: ['process_exec', 'process_exit'],
      binary: 'curl$',
      policy: ['a', 'b'],
    });
    assert.equal(post, undefined);
    const withAllow = historyQuery({ allow: '{"arguments_regex":["secret"]}' });
    const ev = (args: string) =>
      ({
        process_exec: { process: { exec_id: 'x', pid: 1, binary: '/b', arguments: args } },
      }) as unknown as ExportEvent;
    assert.equal(withAllow.after?.(ev('a secret')), true);
    assert.equal(withAllow.after?.(ev('nothing')), false);
  });

  it('refuses bad parameters with a message that names them', () => {
    assert.throws(() => historyQuery({ limit: '0' }), /limit=0: give a whole number from 1 to 100000/);
    assert.throws(() => historyQuery({ binary: '(' }), /binary "\(" is not a valid regular expression/);
    assert.throws(
      () => historyQuery({ deny: '{"pid":"x"}' }),
      /deny filter line 1: pid: expected a list of pids/,
    );
    // a misspelt type or a range backwards would match nothing, silently
    assert.throws(
      () => historyQuery({ type: 'process_exec,process_exce' }),
      /unknown event type "process_exce": did you mean "process_exec"\? known types: process_exec, process_exit, process_kprobe, process_tracepoint, flow, rate_limit_info/,
    );
    const now = Date.parse('2026-11-25T10:00:00Z');
    assert.throws(
      () => historyQuery({ since: '1h', until: '2h' }, now),
      /since "1h" \(2026-11-25T09:00:00.000Z\) is after until "2h" \(2026-11-25T08:00:00.000Z\): no event lies between them/,
    );
    // the same instant at both ends is a range (of one instant), as is an RFC 3339 time with an offset before a later one
    assert.doesNotThrow(() =>
      historyQuery({ since: '2026-11-25T10:00:00+01:00', until: '2026-11-25T09:30:00Z' }),
    );
    assert.doesNotThrow(() => historyQuery({ since: '2026-11-25T09:00:00Z', until: '2026-11-25T09:00:00Z' }));
  });
});

describe('the OpenAPI document', () => {
  const doc = openApiDocument('1.2.3');

  it('is JSON, resolves every $ref and declares every path parameter', () => {
    const text = JSON.stringify(doc);
    assert.deepEqual(JSON.parse(text), doc);
    for (const m of text.matchAll(/"\$ref":"#\/components\/schemas\/([A-Za-z]+)"/g)) {
      assert.ok(doc.components.schemas[m[1]!], `schema ${m[1]} is defined`);
    }
    for (const [p, item] of Object.entries(doc.paths)) {
      const names = [...p.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      for (const [method, op] of Object.entries(item)) {
        const declared = (op.parameters ?? []).filter((x) => x.in === 'path').map((x) => x.name);
        assert.deepEqual(declared.sort(), [...names].sort(), `${method} ${p} declares its path parameters`);
        assert.ok(op.responses, `${method} ${p} has responses`);
        if (method !== 'get')
          assert.deepEqual(op.security, [{ bearerAuth: [] }], `${method} ${p} needs the token`);
      }
    }
    assert.equal(doc.info.version, '1.2.3');
  });

  it('compares with registered routes both ways', () => {
    const routes = documentedRoutes(doc);
    assert.ok(routes.includes('GET /v1/processes/:exec_id'));
    assert.deepEqual(compareRoutes([...routes, 'HEAD /v1/status'], doc), {
      undocumented: [],
      unregistered: [],
    });
    assert.deepEqual(compareRoutes([...routes.slice(1), 'GET /v1/new'], doc), {
      undocumented: ['GET /v1/new'],
      unregistered: [routes[0]!],
    });
  });
});

describe('the API over TCP', () => {
  it('creates a token file with mode 0600, and reads it back', () => {
    const file = path.join(dir, 'tok', 'api-token');
    const lines: string[] = [];
    const t = loadOrCreateToken(file, (l) => lines.push(l));
    assert.match(t, /^[0-9a-f]{64}$/);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(
      loadOrCreateToken(file, (l) => lines.push(l)),
      t,
    );
    assert.deepEqual(lines, [`created API token file ${file}`]);
    writeFileSync(path.join(dir, 'short'), 'abc\n');
    assert.throws(() => loadOrCreateToken(path.join(dir, 'short'), () => undefined), /shorter than 16/);
  });

  it('needs the token for changes, not for reads, and refuses other host names on loopback', async () => {
    const seen: string[] = [];
    const api = await TcpApi.listen({
      address: { host: '127.0.0.1', port: 0 },
      token: 't'.repeat(32),
      tokenFile: '/x/token',
      handle: (req, res) => {
        seen.push(`${req.method} ${req.url}`);
        res.end('ok');
      },
    });
    const call = (method: string, headers: Record<string, string> = {}) =>
      new Promise<number>((resolve, reject) => {
        http
          .request({ host: '127.0.0.1', port: api.port, method, path: '/v1/policies', headers }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          })
          .on('error', reject)
          .end();
      });
    try {
      assert.equal(await call('GET'), 200);
      assert.equal(await call('POST'), 401);
      assert.equal(await call('DELETE', { authorization: 'Bearer wrong' }), 401);
      assert.equal(await call('PUT', { authorization: `Bearer ${'t'.repeat(32)}` }), 200);
      assert.equal(await call('GET', { host: 'evil.example' }), 421);
      assert.equal(await call('GET', { host: 'localhost:1234' }), 200);
      assert.deepEqual(seen, ['GET /v1/policies', 'PUT /v1/policies', 'GET /v1/policies']);
      assert.deepEqual(
        { ...api.status(), address: '' },
        { address: '', token_file: '/x/token', unauthorized: 2, wrong_host: 1 },
      );
    } finally {
      await api.close();
    }
  });
});

describe('export options', () => {
  const cfg = (o: Record<string, unknown>) => ({
    ...defaults('n'),
    storePath: undefined,
    apiTokenFile: '/t',
    ...o,
  });
  const exec = (args: string): ExportEvent =>
    ({
      process_exec: {
        process: { exec_id: 'e', pid: 7, binary: '/usr/bin/mysql', arguments: args, cwd: '/' },
      },
      node_name: 'n',
      time: '2026-11-25T10:00:00Z',
    }) as unknown as ExportEvent;

  it('redacts before the bus and leaves events without secrets as they are', () => {
    const ex = new ExportOptions(cfg({ redactionFilters: '{"redact":["--password=(\\\\S+)"]}' }) as never);
    const clean = exec('-u ana');
    const [a, b] = ex.redact([exec('--password=hunter2 -u ana'), clean]);
    assert.equal(
      (a as never as { process_exec: { process: { arguments: string } } }).process_exec.process.arguments,
      '--password=***** -u ana',
    );
    assert.equal(b, clean);
    assert.deepEqual(ex.redactionStatus(), { filters: 1, events_redacted: 1 });
  });

  it('names the flag of a bad option', () => {
    assert.throws(
      () => new ExportOptions(cfg({ exportAllowlist: '{"binary_regexx":["a"]}' }) as never),
      (err: unknown) =>
        err instanceof UserError &&
        /^--export-allowlist: export allow list line 1: binary_regexx/.test(err.message),
    );
  });

  it('writes what the rate limit dropped when the file closes', async () => {
    const ex = new ExportOptions(cfg({ exportRateLimit: 2 }) as never);
    const written: ExportEvent[] = [];
    const sink = ex.fileSink((batch) => {
      written.push(...batch);
    });
    await sink([exec('1'), exec('2'), exec('3'), exec('4'), exec('5')]);
    await ex.closeFile();
    assert.equal(written.length, 3);
    assert.deepEqual((written[2] as never as { rate_limit_info: unknown }).rate_limit_info, {
      number_of_dropped_process_events: '3',
    });
    assert.equal(ex.fileStats()?.rate_limited, 3);
  });
});

describe('the agent store', () => {
  it('reports a store locked by another process and lets the agent run without it', () => {
    const file = path.join(dir, 'locked', 'events.db');
    EventStore.open(file).close();
    const holder = new Database(file);
    holder.exec('BEGIN IMMEDIATE');
    const lines: string[] = [];
    try {
      const st = AgentStore.open({
        path: file,
        maxAgeMs: 0,
        maxBytes: 0,
        log: (l) => lines.push(l),
        onError: () => undefined,
      });
      assert.equal(st.store, undefined);
      assert.match(st.error ?? '', /is locked by another process .*stop the other agent or program/);
      assert.match(lines.join('\n'), /^warning: event store .* locked .*running without the event store/);
      assert.match(st.unavailable() ?? '', /^the event store is not available: /);
      assert.deepEqual({ ...st.status(), error: '' }, { enabled: false, path: file, error: '' });
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
  });

  it('says how to turn the store on when it is off', () => {
    const st = AgentStore.open({
      path: undefined,
      maxAgeMs: 0,
      maxBytes: 0,
      log: () => undefined,
      onError: () => undefined,
    });
    assert.match(st.unavailable() ?? '', /turned off .*--store-path PATH/);
  });
});

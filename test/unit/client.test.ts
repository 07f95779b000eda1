// The CLI's one-shot API client (src/cli/client.ts) against real HTTP
// servers on unix sockets: node:http's own, answering as the agent does
// (Content-Length, chunked), and sockets that answer wrongly or not at all.
import assert from 'node:assert/strict';
import type net from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { answerError, apiCall, parseAnswer } from '../../src/cli/client.js';
import { socketServers } from '../lib/socket-servers.js';

const { dir, serve, serveRaw } = socketServers('osprey-client-test-');

describe('apiCall', () => {
  it('sends the method, path and body, and reads an answer of known length', async () => {
    const seen: string[] = [];
    const s = await serve((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        seen.push(`${req.method} ${req.url} ${req.headers['content-type']} ${body}`);
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ name: 'pé', got: body.length }));
      });
    });
    try {
      const a = await apiCall(s.sock, 'POST', '/v1/policies?source=%2Fx', {
        text: 'kind: TracingPolicy # é\n',
        contentType: 'application/yaml',
      });
      assert.equal(a.status, 201);
      assert.deepEqual(JSON.parse(a.body), { name: 'pé', got: 24 });
      assert.deepEqual(seen, ['POST /v1/policies?source=%2Fx application/yaml kind: TracingPolicy # é\n']);
      const d = await apiCall(s.sock, 'DELETE', '/v1/policies/x');
      assert.equal(d.status, 201);
      assert.equal(seen[1], 'DELETE /v1/policies/x undefined ');
    } finally {
      await s.close();
    }
  });

  it('reads a chunked answer and an error status', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.write('{"error":');
      setTimeout(() => res.end('"no policy \\"x\\""}'), 20);
    });
    try {
      const a = await apiCall(s.sock, 'GET', '/v1/policies/x');
      assert.equal(a.status, 404);
      assert.equal(answerError(a).message, 'the agent answered 404: no policy "x"');
    } finally {
      await s.close();
    }
  });

  it('says what to do when no agent listens, and when one does not answer in time', async () => {
    await assert.rejects(
      apiCall(path.join(dir, 'none.sock'), 'GET', '/v1/status'),
      /no agent is listening on .*none\.sock; start one with `osprey agent`/,
    );
    const held: net.Socket[] = [];
    const s = await serveRaw((c) => void held.push(c));
    try {
      await assert.rejects(
        apiCall(s.sock, 'GET', '/v1/status', undefined, 100),
        /the agent on .* did not answer within 100 ms/,
      );
    } finally {
      for (const c of held) c.destroy();
      await s.close();
    }
  });

  it('takes an answer of known length at once, without waiting for the server to close', async () => {
    const held: net.Socket[] = [];
    const s = await serveRaw((c) => {
      held.push(c);
      c.write('HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: keep-alive\r\n\r\n{"ok":');
      setTimeout(() => c.write('true}'), 20);
    });
    try {
      const t0 = Date.now();
      const a = await apiCall(s.sock, 'GET', '/v1/health', undefined, 5000);
      assert.deepEqual(
        { ...a, headers: Object.fromEntries(a.headers ?? []) },
        {
          status: 200,
          body: '{"ok":true}',
          headers: { 'content-length': '11', connection: 'keep-alive' },
        },
      );
      assert.ok(Date.now() - t0 < 4000, 'answered before the timeout');
    } finally {
      for (const c of held) c.destroy();
      await s.close();
    }
  });

  it('refuses an answer that is not HTTP or is cut short', async () => {
    const s = await serveRaw((c) => c.end('SSH-2.0-OpenSSH\r\n'));
    const t = await serveRaw((c) => c.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{"a":'));
    try {
      await assert.rejects(
        apiCall(s.sock, 'GET', '/v1/status'),
        /answered something unexpected: an HTTP answer without/,
      );
      await assert.rejects(
        apiCall(t.sock, 'GET', '/v1/status'),
        /answered something unexpected: an answer of 5 bytes where its Content-Length says 10/,
      );
    } finally {
      await s.close();
      await t.close();
    }
  });
});

describe('parseAnswer', () => {
  it('takes chunk extensions, and a body up to the end when no length is given', () => {
    const chunked = Buffer.from(
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n',
    );
    const a = parseAnswer(chunked);
    assert.deepEqual({ status: a.status, body: a.body }, { status: 200, body: 'abcde' });
    assert.equal(a.headers?.get('transfer-encoding'), 'chunked', 'headers by their lower-case names');
    const b = parseAnswer(Buffer.from('HTTP/1.0 503 Busy\r\n\r\nlater'));
    assert.deepEqual(
      { status: b.status, body: b.body, headers: b.headers?.size },
      {
        status: 503,
        body: 'later',
        headers: 0,
      },
    );
    assert.throws(
      () => parseAnswer(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab')),
      /chunked answer cut short/,
    );
    assert.throws(() => parseAnswer(Buffer.alloc(0)), /^Error: nothing$/);
  });
});

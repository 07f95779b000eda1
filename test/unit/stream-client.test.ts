// The CLI's stream client (src/cli/stream-client.ts): the HTTP framing taken
// off as bytes come, streams from real HTTP servers on unix sockets, and the
// stdout sink's two paths (straight to the descriptor, and through the stream
// while a full pipe makes the stream wait).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { UserError } from '../../src/agent/fs-util.js';
import { BodyDecoder } from '../../src/cli/client.js';
import { lineSink, openStream, stdoutSink, streamError } from '../../src/cli/stream-client.js';
import { socketServers } from '../lib/socket-servers.js';

const { dir, serve, serveRaw } = socketServers('osprey-stream-test-');

/** Everything a decoder gives for these pieces, as text. */
function decode(d: BodyDecoder, pieces: Buffer[]): string {
  let out = '';
  for (const p of pieces)
    d.feed(p, 0, p.length, (b, s, e) => {
      out += b.toString('latin1', s, e);
      return true;
    });
  return out;
}

const CHUNKED = Buffer.from('5\r\nhello\r\n7;ext=1\r\n, world\r\n1\r\n\n\r\n0\r\nX-Trailer: 1\r\n\r\n');

describe('BodyDecoder', () => {
  it('takes chunked framing off whether the bytes come at once or one by one', () => {
    const whole = new BodyDecoder('chunked');
    assert.equal(decode(whole, [CHUNKED]), 'hello, world\n');
    assert.ok(whole.done);
    const bytes = new BodyDecoder('chunked');
    assert.equal(
      decode(
        bytes,
        [...CHUNKED].map((c) => Buffer.from([c])),
      ),
      'hello, world\n',
    );
    assert.ok(bytes.done);
    const partial = new BodyDecoder('chunked');
    assert.equal(decode(partial, [CHUNKED.subarray(0, 12)]), 'hello');
    assert.ok(!partial.done, 'the body has not ended');
  });

  it('stops at a Content-Length and reads to the close without one', () => {
    const d = new BodyDecoder('length', 4);
    assert.equal(decode(d, [Buffer.from('ab'), Buffer.from('cdef')]), 'abcd');
    assert.ok(d.done);
    const c = new BodyDecoder('close');
    assert.equal(decode(c, [Buffer.from('ab'), Buffer.from('cd')]), 'abcd');
    assert.ok(!c.done);
  });

  it('refuses framing that is not HTTP', () => {
    assert.throws(
      () => decode(new BodyDecoder('chunked'), [Buffer.from('zz\r\nhello\r\n')]),
      /bad chunk size "zz"/,
    );
    assert.throws(
      () => decode(new BodyDecoder('chunked'), [Buffer.from('2\r\nhiX')]),
      /not followed by CRLF/,
    );
  });

  it('passes on what the sink says about waiting', () => {
    const d = new BodyDecoder('chunked');
    assert.equal(
      d.feed(CHUNKED, 0, CHUNKED.length, () => false),
      false,
    );
    assert.ok(d.done, 'the decoder still took every byte it was given');
  });
});

describe('openStream', () => {
  it('streams a chunked answer written over time, to its end', async () => {
    const s = await serve((req, res) => {
      assert.equal(req.url, '/v1/events?types=a');
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      let i = 0;
      const t = setInterval(() => {
        res.write(`{"n":${i}}\n`);
        // a large one: it spans reads
        if (i === 1) res.write(`{"big":"${'x'.repeat(600_000)}"}\n`);
        if (++i === 4) {
          clearInterval(t);
          res.end();
        }
      }, 5);
    });
    try {
      const stream = await openStream(s.sock, '/v1/events?types=a');
      assert.equal(stream.status, 200);
      const lines: string[] = [];
      await stream.pipe(lineSink((l) => lines.push(l)));
      assert.deepEqual(
        lines.map((l) => Object.keys(JSON.parse(l))[0]),
        ['n', 'n', 'big', 'n', 'n'],
      );
      assert.equal(JSON.parse(lines[2]!).big.length, 600_000);
    } finally {
      await s.close();
    }
  });

  it("gives a refused stream's error from its body", async () => {
    const s = await serve((_req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'unknown event type "nope"' }));
    });
    try {
      const stream = await openStream(s.sock, '/v1/events?types=nope');
      assert.equal(stream.status, 400);
      const err = await streamError(stream);
      assert.ok(err instanceof UserError);
      assert.equal(err.message, 'the agent answered 400: unknown event type "nope"');
    } finally {
      await s.close();
    }
  });

  it('gives the whole body when the connection ended before the body was asked for', async () => {
    const s = await serve((req, res) => {
      if (req.url === '/refused') {
        res.writeHead(400, { 'content-type': 'application/json', connection: 'close' });
        res.end(JSON.stringify({ error: 'no' }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/x-ndjson', connection: 'close' });
      res.write('{"a":1}\n');
      res.end('{"b":2}\n');
    });
    try {
      const refused = await openStream(s.sock, '/refused');
      await new Promise((r) => setTimeout(r, 100));
      assert.equal((await streamError(refused)).message, 'the agent answered 400: no');
      const short = await openStream(s.sock, '/short');
      await new Promise((r) => setTimeout(r, 100));
      const lines: string[] = [];
      await short.pipe(lineSink((l) => lines.push(l)));
      assert.deepEqual(lines, ['{"a":1}', '{"b":2}']);
    } finally {
      await s.close();
    }
  });

  it('says what to do when no agent listens, and when the answer is not HTTP', async () => {
    await assert.rejects(
      openStream(path.join(dir, 'none.sock'), '/v1/events'),
      /no agent is listening on .*none\.sock; start one with `osprey agent`/,
    );
    const s = await serveRaw((c) => c.end('SSH-2.0-OpenSSH_9.2\r\n\r\n'));
    try {
      await assert.rejects(
        openStream(s.sock, '/v1/events'),
        /not HTTP: "SSH-2.0-OpenSSH_9.2" is not an HTTP status line/,
      );
    } finally {
      await s.close();
    }
  });
});

describe('stdoutSink', () => {
  it('writes straight to a file descriptor that takes the bytes', () => {
    const file = path.join(dir, 'out.json');
    const fd = openSync(file, 'w');
    try {
      const sink = stdoutSink(
        process.stdout,
        () => assert.fail('no resume'),
        () => assert.fail('not gone'),
        fd,
      );
      const b = Buffer.from('..{"a":1}\n{"b":2}\n..');
      assert.equal(sink(b, 2, b.length - 2), true);
    } finally {
      closeSync(fd);
    }
    assert.equal(execFileSync('cat', [file], { encoding: 'utf8' }), '{"a":1}\n{"b":2}\n');
  });

  it('waits for a full pipe in order, the stream paused until it has taken everything', async () => {
    // a non-blocking pipe (a FIFO opened both ways), as a stdout whose reader is slow
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const r = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const w = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    const out = new net.Socket({ fd: w, readable: false, writable: true });
    const reader = new net.Socket({ fd: r, readable: true, writable: false });
    reader.pause();
    const got: Buffer[] = [];
    reader.on('data', (d: Buffer) => got.push(d));
    let resumed = 0;
    let paused = 0;
    const sink = stdoutSink(
      out,
      () => resumed++,
      () => assert.fail('not gone'),
      w,
    );
    const want: Buffer[] = [];
    // 4 MB in 64-KB writes of distinct bytes, far more than a pipe holds, from one reused buffer
    const buf = Buffer.alloc(65536);
    for (let i = 0; i < 64; i++) {
      buf.fill(i);
      want.push(Buffer.from(buf));
      if (!sink(buf, 0, buf.length)) paused++;
    }
    assert.ok(paused > 0, 'a full pipe paused the stream');
    reader.resume();
    const total = 64 * 65536;
    await new Promise<void>((res) => {
      const check = () => (Buffer.concat(got).length >= total ? res() : setTimeout(check, 5));
      check();
    });
    assert.ok(Buffer.concat(got).equals(Buffer.concat(want)), 'every byte, in order');
    assert.equal(resumed, 1, 'resumed once the last queued write was done');
    out.destroy();
    reader.destroy();
  });
});

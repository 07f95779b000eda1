// HTTP and raw servers on unix sockets in a directory of their own, for the
// CLI client tests: each test file gets one directory, removed after its tests.
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';

export interface Listening {
  sock: string;
  /** closes the connections still open (a stream the test left) and the server */
  close(): Promise<void>;
}

export function socketServers(prefix: string) {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const listen = async (server: net.Server): Promise<Listening> => {
    const sock = path.join(dir, `s${++n}.sock`);
    await new Promise<void>((r) => server.listen(sock, r));
    return {
      sock,
      close: () =>
        new Promise<void>((r) => {
          (server as http.Server).closeAllConnections?.();
          server.close(() => r());
        }),
    };
  };
  return {
    /** where the sockets are: a test may put its own files there */
    dir,
    serve: (handler: http.RequestListener) => listen(http.createServer(handler)),
    // the raw servers read what they are sent, so that their side of each connection ends too
    serveRaw: (handler: (c: net.Socket) => void) =>
      listen(
        net.createServer((c) => {
          c.resume();
          handler(c);
        }),
      ),
  };
}

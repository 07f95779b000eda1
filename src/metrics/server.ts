/**
 * The Prometheus endpoint: GET /metrics in the text exposition format over
 * plain HTTP, by default on the loopback address only.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { UserError } from '../agent/fs-util.js';

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** The flag that moves the endpoint, named in the advice. */
export const METRICS_ADDRESS_FLAG = '--metrics-address';

export interface MetricsServerOptions {
  /** address to listen on (default 127.0.0.1: other hosts cannot scrape unless asked for) */
  host?: string;
  /** port; 0 picks a free one */
  port: number;
  /** what /metrics serves */
  metrics: { render(): string };
}

export interface MetricsServerStats {
  address: string;
  scrapes: number;
  errors: number;
}

export class MetricsServer {
  private scrapes = 0;
  private errors = 0;

  private constructor(
    private readonly server: http.Server,
    readonly host: string,
    readonly port: number,
  ) {}

  /** Listen; resolves once the port is bound, rejects with a UserError that says what to change. */
  static listen(opts: MetricsServerOptions): Promise<MetricsServer> {
    const host = opts.host ?? '127.0.0.1';
    const port = opts.port;
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      return Promise.reject(new UserError(`metrics port ${port} must be an integer from 0 to 65535`));
    }
    let self: MetricsServer | undefined;
    const server = http.createServer((req, res) => self?.handle(req, res, opts.metrics));
    // a scraper that keeps its connection open must not hold the agent's shutdown
    server.keepAliveTimeout = 5000;
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
        if (err.code === 'EADDRINUSE') {
          reject(
            new UserError(
              `metrics address ${where} is already in use; choose another with ${METRICS_ADDRESS_FLAG}`,
            ),
          );
        } else if (err.code === 'EACCES') {
          reject(
            new UserError(
              `not allowed to listen on metrics address ${where}; use a port above 1023 ` +
                `or choose another with ${METRICS_ADDRESS_FLAG}`,
            ),
          );
        } else if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') {
          reject(
            new UserError(
              `metrics address ${where} is not an address of this host (${err.code}); ` +
                `choose another with ${METRICS_ADDRESS_FLAG}`,
            ),
          );
        } else {
          reject(new UserError(`cannot listen on metrics address ${where}: ${err.message}`));
        }
      };
      server.once('error', onError);
      server.listen(port, host, () => {
        server.off('error', onError);
        const a = server.address() as AddressInfo;
        self = new MetricsServer(server, host, a.port);
        resolve(self);
      });
    });
  }

  /** "http://127.0.0.1:9090/metrics" */
  get url(): string {
    const h = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `http://${h}:${this.port}/metrics`;
  }

  stats(): MetricsServerStats {
    return { address: this.url, scrapes: this.scrapes, errors: this.errors };
  }

  /** Stop listening and close open connections. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse, metrics: { render(): string }): void {
    const url = (req.url ?? '/').split('?')[0];
    if (url !== '/metrics') {
      res.writeHead(url === '/' ? 200 : 404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(url === '/' ? 'Osprey metrics: GET /metrics\n' : 'not found: metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
      res.end('method not allowed: use GET\n');
      return;
    }
    let body: string;
    try {
      body = metrics.render();
    } catch (err) {
      this.errors++;
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`metrics could not be collected: ${(err as Error).message}\n`);
      return;
    }
    this.scrapes++;
    res.writeHead(200, { 'content-type': CONTENT_TYPE, 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  }
}

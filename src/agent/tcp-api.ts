/**
 * The API over TCP: the same routes as the unix socket (requests are handed
 * to the same router), for the web UI and for tools that cannot reach the
 * socket.
 *
 * The unix socket is root-only, so whoever reaches it may do anything. A
 * TCP port is reachable by every local user (and by other hosts when bound
 * beyond loopback), so:
 *   - every request that can change state (any method but GET, HEAD and
 *     OPTIONS: adding, deleting, enabling policies, changing modes ...) needs
 *     `Authorization: Bearer TOKEN`, the token being the content of
 *     --api-token-file (created with mode 0600 when missing);
 *   - reads need no token;
 *   - on a loopback address, a request whose Host header names some other
 *     host is refused (421), so that a web page cannot reach the API through
 *     DNS rebinding.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { formatAddress, type ListenAddress } from './address.js';
import { describeFsError, mkdirp, UserError } from './fs-util.js';

/** Methods that only read. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export interface TcpApiStatus {
  address: string;
  token_file: string;
  /** requests refused for a missing or wrong token */
  unauthorized: number;
  /** requests refused for naming another host (DNS rebinding guard) */
  wrong_host: number;
}

/**
 * The token in `file`, created (32 random bytes, hex, mode 0600, in a 0700
 * directory when that is missing) when there is none. A token file others
 * can read is used, with a warning.
 */
export function loadOrCreateToken(file: string, log: (line: string) => void): string {
  try {
    const token = readFileSync(file, 'utf8').trim();
    if (token.length < 16) {
      throw new UserError(
        `API token file ${file} holds ${token.length ? 'a token shorter than 16 characters' : 'no token'}; ` +
          'put a long random token in it, or delete it to have one generated',
      );
    }
    if ((statSync(file).mode & 0o077) !== 0) {
      log(`warning: API token file ${file} is readable by others; chmod 600 it`);
    }
    return token;
  } catch (err) {
    if (err instanceof UserError) throw err;
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new UserError(
        `cannot read API token file ${file}: ${describeFsError(err)}; choose another with --api-token-file`,
      );
    }
  }
  const token = randomBytes(32).toString('hex');
  try {
    mkdirp(path.dirname(file), 0o700);
    const fd = openSync(file, 'wx', 0o600);
    try {
      writeSync(fd, `${token}\n`);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    throw new UserError(
      `cannot create API token file ${file}: ${describeFsError(err)}; choose a writable path with --api-token-file`,
    );
  }
  log(`created API token file ${file}`);
  return token;
}

export interface TcpApiOptions {
  address: ListenAddress;
  token: string;
  tokenFile: string;
  /** the router of the unix-socket API */
  handle: (req: IncomingMessage, res: ServerResponse) => void;
  /**
   * serves what is not under /v1/ (the web UI's files), read-only; returns
   * false for what it does not have, which then goes to the router (404)
   */
  ui?: (req: IncomingMessage, res: ServerResponse) => boolean;
}

export class TcpApi {
  private unauthorized = 0;
  private wrongHost = 0;
  private readonly token: Buffer;

  private constructor(
    private readonly server: http.Server,
    private readonly opts: TcpApiOptions,
    readonly port: number,
  ) {
    this.token = Buffer.from(opts.token);
  }

  /** "127.0.0.1:8181", with the port actually bound. */
  get address(): string {
    return formatAddress({ host: this.opts.address.host, port: this.port });
  }

  static listen(opts: TcpApiOptions): Promise<TcpApi> {
    let self: TcpApi | undefined;
    const server = http.createServer((req, res) => self?.serve(req, res));
    const where = formatAddress(opts.address);
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        const why =
          err.code === 'EADDRINUSE'
            ? 'it is already in use'
            : err.code === 'EADDRNOTAVAIL'
              ? 'it is not an address of this host'
              : err.code === 'EACCES'
                ? 'not allowed (use a port above 1023)'
                : describeFsError(err);
        reject(new UserError(`cannot serve the API on ${where}: ${why}; choose another with --api-address`));
      };
      server.once('error', onError);
      server.listen(opts.address.port, opts.address.host, () => {
        server.off('error', onError);
        self = new TcpApi(server, opts, (server.address() as AddressInfo).port);
        resolve(self);
      });
    });
  }

  status(): TcpApiStatus {
    return {
      address: this.address,
      token_file: this.opts.tokenFile,
      unauthorized: this.unauthorized,
      wrong_host: this.wrongHost,
    };
  }

  /** Stop listening and cut open connections (the API server has ended its streams by then). */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private serve(req: IncomingMessage, res: ServerResponse): void {
    if (!this.hostAllowed(req.headers.host)) {
      this.wrongHost++;
      refuse(res, 421, `this API answers only requests for ${this.address}`);
      return;
    }
    if (!SAFE_METHODS.has(req.method ?? 'GET') && !this.authorized(req.headers.authorization)) {
      this.unauthorized++;
      res.setHeader('www-authenticate', 'Bearer realm="osprey"');
      refuse(
        res,
        401,
        `${req.method} over TCP needs "Authorization: Bearer TOKEN" with the token in ${this.opts.tokenFile}`,
      );
      return;
    }
    if (this.opts.ui && !(req.url ?? '/').startsWith('/v1/') && SAFE_METHODS.has(req.method ?? 'GET')) {
      if (this.opts.ui(req, res)) return;
    }
    this.opts.handle(req, res);
  }

  private authorized(header: string | undefined): boolean {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    if (!m) return false;
    const given = Buffer.from(m[1]!);
    return given.length === this.token.length && timingSafeEqual(given, this.token);
  }

  /** On loopback, only IP literals, localhost and the bound host; anything goes on other addresses. */
  private hostAllowed(host: string | undefined): boolean {
    const bound = this.opts.address.host;
    if (!isLoopback(bound)) return true;
    if (host === undefined) return true;
    const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
    return (
      name === 'localhost' ||
      name === bound ||
      /^[\d.]+$/.test(name) ||
      (name.includes(':') && !name.includes('.'))
    );
  }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

function refuse(res: ServerResponse, status: number, error: string): void {
  const body = JSON.stringify({ error });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * The web UI's server: HTTP on a loopback TCP address (--ui-address,
 * default 127.0.0.1:2113), serving the page (web/index.html, web/style.css
 * and the scripts tsc compiles into dist/web) and a same-origin proxy of
 * /v1/* to the API's unix socket, so the browser never needs the socket.
 *
 * The socket is root-only; a TCP port is open to every local user. So the
 * proxy answers only a signed-in browser: the token is in STATE_DIR/ui-token
 * (mode 0600, created when missing, kept across restarts), and opening
 * /?token=TOKEN (or the sign-in form) sets an HttpOnly, SameSite=Strict
 * cookie. Requests that change anything must also carry the header
 * x-osprey-ui, which a cross-site form cannot send. A Host header that is
 * not a loopback name is refused, so a DNS-rebound name cannot reach it.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { formatAddress, parseListenAddress } from './address.js';
import { repoRoot } from './config.js';
import { describeFsError, mkdirp, UserError } from './fs-util.js';

const COOKIE = 'osprey_ui';
const UI_HEADER = 'x-osprey-ui';
const TOKEN_FILE = 'ui-token';
/** sign-in bodies are a token; anything bigger is not one */
const LOGIN_BODY_LIMIT = 4096;

export interface UiServerOptions {
  /** HOST:PORT on a loopback address; port 0 picks a free one */
  address: string;
  /** the API's unix socket, where /v1/* goes */
  apiSocket: string;
  /** the sign-in token's file; created (0600) when missing */
  tokenFile: string;
  /** index.html and style.css (default web/ of the repository) */
  webRoot?: string;
  /** the compiled scripts (default dist/web of the repository) */
  scriptRoot?: string;
  log?: (line: string) => void;
}

const STATIC: Readonly<Record<string, { file: string; type: string; root: 'web' | 'script' }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8', root: 'web' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8', root: 'web' },
  '/ui/style.css': { file: 'style.css', type: 'text/css; charset=utf-8', root: 'web' },
};

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const COMMON_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};

/** Is this host name or address one that only reaches this machine? */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || h.endsWith('.localhost');
}

/** Read the token file, or create it with a new random token. */
export function loadOrCreateToken(file: string): { token: string; created: boolean } {
  try {
    const t = readFileSync(file, 'utf8').trim();
    if (/^[A-Za-z0-9_-]{32,}$/.test(t)) {
      // whoever copied it here may have left it readable by others
      chmodSync(file, 0o600);
      return { token: t, created: false };
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new UserError(`cannot read the web UI token ${file}: ${describeFsError(err)}`);
    }
  }
  const token = randomBytes(32).toString('base64url');
  try {
    mkdirp(path.dirname(file), 0o700);
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${token}\n`, { mode: 0o600 });
    renameSync(tmp, file);
  } catch (err) {
    throw new UserError(
      `cannot write the web UI token ${file}: ${describeFsError(err)}; choose another --state-dir, or turn the UI off with --ui-address ""`,
    );
  }
  return { token, created: true };
}

function cookieToken(req: IncomingMessage): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === COOKIE) return decodeURIComponent(part.slice(i + 1).trim());
  }
  return undefined;
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...COMMON_HEADERS,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export class UiServer {
  private readonly upstream = new Set<http.ClientRequest>();
  private closing: Promise<void> | undefined;
  private readonly webRoot: string;
  private readonly scriptRoot: string;

  private constructor(
    private readonly server: http.Server,
    private readonly opts: UiServerOptions,
    private readonly token: string,
  ) {
    this.webRoot = opts.webRoot ?? path.join(repoRoot, 'web');
    this.scriptRoot = opts.scriptRoot ?? path.join(repoRoot, 'dist/web');
  }

  /** Listen on opts.address; a non-loopback address is refused. */
  static async listen(opts: UiServerOptions): Promise<UiServer> {
    const addr = parseListenAddress(opts.address, '--ui-address');
    if (!isLoopbackHost(addr.host)) {
      throw new UserError(
        `--ui-address ${opts.address}: the web UI listens on loopback only (127.0.0.1 or [::1]); ` +
          'to reach it from another machine, forward the port over SSH (ssh -L 2113:127.0.0.1:2113 HOST)',
        2,
      );
    }
    const { token } = loadOrCreateToken(opts.tokenFile);
    const server = http.createServer();
    const ui = new UiServer(server, opts, token);
    server.on('request', (req, res) => ui.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        reject(
          Object.assign(
            new UserError(
              `cannot listen on ${formatAddress(addr)} for the web UI: ${describeFsError(err)}; ` +
                'choose another port with --ui-address, or turn the UI off with --ui-address ""',
            ),
            { code: err.code },
          ),
        );
      });
      server.listen(addr.port, addr.host, () => resolve());
    });
    return ui;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** http://127.0.0.1:PORT/ */
  get url(): string {
    const a = this.server.address() as AddressInfo;
    return `http://${formatAddress({ host: a.address, port: a.port })}/`;
  }

  get tokenFile(): string {
    return this.opts.tokenFile;
  }

  /** Stop listening, and end every request, proxied streams included. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      for (const u of this.upstream) u.destroy();
      this.upstream.clear();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    return this.closing;
  }

  private signedIn(req: IncomingMessage): boolean {
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    return this.tokenMatches(cookieToken(req) ?? bearer);
  }

  private tokenMatches(t: string | undefined): boolean {
    if (!t) return false;
    const a = Buffer.from(t);
    const b = Buffer.from(this.token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private cookie(value: string, maxAge?: number): string {
    return `${COOKIE}=${encodeURIComponent(value)}; Path=/; HttpOnly; SameSite=Strict${
      maxAge !== undefined ? `; Max-Age=${maxAge}` : ''
    }`;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const host = (req.headers.host ?? '').replace(/:\d+$/, '');
    if (!isLoopbackHost(host)) {
      sendJson(res, 421, { error: `the web UI answers only to a loopback host name, not "${host}"` });
      return;
    }
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      sendJson(res, 400, { error: 'bad request URL' });
      return;
    }
    const p = url.pathname;
    if (p.startsWith('/v1/')) {
      this.proxy(req, res);
      return;
    }
    if (p === '/ui/login' && req.method === 'POST') {
      this.login(req, res);
      return;
    }
    if (p === '/ui/logout' && req.method === 'POST') {
      sendJson(res, 200, { signed_out: true }, { 'set-cookie': this.cookie('', 0) });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendJson(res, 405, { error: `${req.method} is not allowed here` });
      return;
    }
    const t = url.searchParams.get('token');
    if ((p === '/' || p === '/index.html') && t !== null) {
      // the token leaves the address bar (and the history) at once
      res.writeHead(303, {
        ...COMMON_HEADERS,
        location: '/',
        ...(this.tokenMatches(t) ? { 'set-cookie': this.cookie(t) } : {}),
      });
      res.end();
      return;
    }
    const st = STATIC[p];
    if (st) {
      this.file(
        res,
        path.join(st.root === 'web' ? this.webRoot : this.scriptRoot, st.file),
        st.type,
        req.method,
      );
      return;
    }
    const js = /^\/ui\/js\/([a-z0-9-]+\.js)$/.exec(p);
    if (js) {
      this.file(res, path.join(this.scriptRoot, js[1]!), 'text/javascript; charset=utf-8', req.method);
      return;
    }
    sendJson(res, 404, { error: `no page ${p}; open / for the UI` });
  }

  private file(res: ServerResponse, file: string, type: string, method: string | undefined): void {
    let body: Buffer;
    try {
      body = readFileSync(file);
    } catch (err) {
      const missingBuild = file.startsWith(this.scriptRoot);
      sendJson(res, 404, {
        error: `${file}: ${describeFsError(err)}${missingBuild ? '; build the UI with npx tsc -p tsconfig.json (scripts/setup.sh does)' : ''}`,
      });
      return;
    }
    res.writeHead(200, {
      ...COMMON_HEADERS,
      'content-type': type,
      'content-length': body.length,
      ...(type.startsWith('text/html') ? { 'content-security-policy': CSP } : {}),
    });
    res.end(method === 'HEAD' ? undefined : body);
  }

  private login(req: IncomingMessage, res: ServerResponse): void {
    if (req.headers[UI_HEADER] === undefined) {
      sendJson(res, 403, { error: `sign in from the UI (header ${UI_HEADER} missing)` });
      return;
    }
    let body = '';
    let tooBig = false;
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
      if (body.length > LOGIN_BODY_LIMIT) {
        tooBig = true;
        req.destroy();
      }
    });
    req.on('end', () => {
      if (tooBig) return;
      let token: unknown;
      try {
        token = (JSON.parse(body) as { token?: unknown }).token;
      } catch {
        token = undefined;
      }
      if (typeof token === 'string' && this.tokenMatches(token)) {
        sendJson(res, 200, { signed_in: true }, { 'set-cookie': this.cookie(token) });
      } else {
        sendJson(res, 401, { error: `wrong token; it is in ${this.opts.tokenFile}` });
      }
    });
  }

  private proxy(req: IncomingMessage, res: ServerResponse): void {
    if (!this.signedIn(req)) {
      sendJson(res, 401, {
        error: `sign in first: the token is in ${this.opts.tokenFile}`,
        auth: 'ui-token',
      });
      return;
    }
    const safe = req.method === 'GET' || req.method === 'HEAD';
    if (!safe && req.headers[UI_HEADER] === undefined) {
      sendJson(res, 403, { error: `changes through the UI need the header ${UI_HEADER}` });
      return;
    }
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== 'null') {
      let ok = false;
      try {
        const o = new URL(origin);
        ok = isLoopbackHost(o.hostname) && o.host === req.headers.host;
      } catch {
        ok = false;
      }
      if (!ok) {
        sendJson(res, 403, { error: `cross-origin request from ${origin} refused` });
        return;
      }
    }
    const headers: Record<string, string | string[]> = { host: 'localhost' };
    for (const h of ['content-type', 'content-length', 'accept', 'transfer-encoding']) {
      const v = req.headers[h];
      if (v !== undefined) headers[h] = v;
    }
    const up = http.request(
      { socketPath: this.opts.apiSocket, method: req.method, path: req.url, headers },
      (ures) => {
        const out: Record<string, string | string[] | number> = { ...COMMON_HEADERS };
        for (const h of ['content-type', 'content-length', 'cache-control']) {
          const v = ures.headers[h];
          if (v !== undefined) out[h] = v;
        }
        res.writeHead(ures.statusCode ?? 502, out);
        // NDJSON streams: every chunk goes on at once
        res.flushHeaders();
        ures.pipe(res);
        ures.on('error', () => res.destroy());
      },
    );
    this.upstream.add(up);
    up.on('close', () => this.upstream.delete(up));
    up.on('error', (err) => {
      if (!res.headersSent) {
        sendJson(res, 502, {
          error: `the agent's API (${this.opts.apiSocket}) does not answer: ${describeFsError(err)}`,
        });
      } else {
        res.destroy();
      }
    });
    // the browser left (a stream closed, a page changed): stop asking the agent
    res.on('close', () => up.destroy());
    req.pipe(up);
  }
}

/**
 * Start the UI for an agent's settings; undefined when it is turned off, or
 * when its port is taken (the agent runs on without it, and says so).
 */
export async function startUi(
  cfg: { uiAddress?: string | undefined; apiSocket: string; stateDir: string },
  log: (line: string) => void,
): Promise<UiServer | undefined> {
  if (!cfg.uiAddress) return undefined;
  let ui: UiServer;
  try {
    ui = await UiServer.listen({
      address: cfg.uiAddress,
      apiSocket: cfg.apiSocket,
      tokenFile: path.join(cfg.stateDir, TOKEN_FILE),
      log,
    });
  } catch (err) {
    if ((err as { code?: string }).code === 'EADDRINUSE') {
      log(`warning: ${(err as Error).message}; running without the web UI`);
      return undefined;
    }
    throw err;
  }
  log(`web UI on ${ui.url} (sign in with the token in ${ui.tokenFile})`);
  return ui;
}

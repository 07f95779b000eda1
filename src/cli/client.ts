/** A client of the agent's local API over its unix socket. */
import http, { type IncomingMessage, type RequestOptions } from 'node:http';
import net from 'node:net';
import { describeFsError, UserError } from '../agent/fs-util.js';

/**
 * Request options that connect straight to the socket, with no http.Agent:
 * the global agent's keep-alive socket timeout (5 s) would abort an event
 * stream that is quiet for a while, and a private agent (`agent: false`)
 * works out a TLS server name for every request, compiling Node's IPv6
 * regular expression on the way: `osprey policy list` took 126-137 ms with
 * it here, 107-115 without (20 runs each, alternated three times).
 */
function direct(socketPath: string): RequestOptions {
  return { createConnection: () => net.createConnection(socketPath) };
}

/** Open GET path on the agent's socket; connection failures become UserErrors that say what to do. */
export function apiRequest(socketPath: string, path: string, timeoutMs = 0): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { ...direct(socketPath), path, ...(timeoutMs ? { timeout: timeoutMs } : {}) },
      resolve,
    );
    req.on('timeout', () => {
      req.destroy(new UserError(`the agent on ${socketPath} did not answer within ${timeoutMs} ms`));
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof UserError) reject(err);
      else reject(connectError(socketPath, err));
    });
  });
}

export interface ApiAnswer {
  status: number;
  body: string;
}

/**
 * One request with an optional body, answered in full. Connection failures
 * become UserErrors that say what to do; any status is returned.
 */
export function apiCall(
  socketPath: string,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  path: string,
  body?: { text: string; contentType: string },
  timeoutMs = 120_000,
): Promise<ApiAnswer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {};
    if (body) {
      headers['content-type'] = body.contentType;
      headers['content-length'] = Buffer.byteLength(body.text);
    }
    const req = http.request({ ...direct(socketPath), path, method, headers, timeout: timeoutMs }, (res) => {
      readBody(res).then((text) => resolve({ status: res.statusCode ?? 0, body: text }), reject);
    });
    req.on('timeout', () => {
      req.destroy(new UserError(`the agent on ${socketPath} did not answer within ${timeoutMs} ms`));
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof UserError) reject(err);
      else reject(connectError(socketPath, err));
    });
    req.end(body?.text);
  });
}

function connectError(socketPath: string, err: NodeJS.ErrnoException): UserError {
  switch (err.code) {
    case 'ENOENT':
    case 'ECONNREFUSED':
      return new UserError(`no agent is listening on ${socketPath}; start one with \`osprey agent\``);
    case 'EACCES':
    case 'EPERM':
      return new UserError(`permission denied on ${socketPath}; the API is root-only, run as root`);
    default:
      return new UserError(`cannot reach the agent on ${socketPath}: ${describeFsError(err)}`);
  }
}

/** The whole body as text. */
export async function readBody(res: IncomingMessage): Promise<string> {
  res.setEncoding('utf8');
  let body = '';
  for await (const chunk of res) body += chunk as string;
  return body;
}

/** The error message of a non-200 API answer. */
export async function apiError(res: IncomingMessage): Promise<UserError> {
  const body = await readBody(res);
  let msg = body.trim();
  try {
    msg = (JSON.parse(body) as { error?: string }).error ?? msg;
  } catch {
    // not JSON: show it as it is
  }
  return new UserError(`the agent answered ${res.statusCode}: ${msg}`, res.statusCode === 400 ? 2 : 1);
}

/**
 * The agent's event and flow streams over its unix socket, through
 * node:http: an answer that goes on for as long as the user watches. One-shot
 * requests use client.ts.
 */
import http, { type IncomingMessage, type RequestOptions } from 'node:http';
import net from 'node:net';
import { UserError } from '../agent/fs-util.js';
import { answerError, connectError } from './client.js';

/**
 * Request options that connect straight to the socket, with no http.Agent:
 * the global agent's keep-alive socket timeout (5 s) would abort a stream
 * that is quiet for a while, and a private agent (`agent: false`) works out
 * a TLS server name for every request, compiling Node's IPv6 regular
 * expression on the way.
 */
function direct(socketPath: string): RequestOptions {
  return { createConnection: () => net.createConnection(socketPath) };
}

/** Open a GET stream; connection failures become UserErrors that say what to do. */
export function streamRequest(socketPath: string, path: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = http.get({ ...direct(socketPath), path }, resolve);
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof UserError) reject(err);
      else reject(connectError(socketPath, err));
    });
  });
}

/** The error of a stream the agent refused (a non-200 answer), from its body. */
export async function streamError(res: IncomingMessage): Promise<UserError> {
  res.setEncoding('utf8');
  let body = '';
  for await (const chunk of res) body += chunk as string;
  return answerError({ status: res.statusCode ?? 0, body });
}

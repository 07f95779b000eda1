// A client of the agent's HTTP API for tests: one request, answered in full.
import http from 'node:http';

// biome-ignore lint/suspicious/noExplicitAny: API answers are walked freely and checked by the assertions
export type Json = Record<string, any>;

export interface Answer {
  status: number;
  body: string;
  json: () => Json;
  /** names in lower case */
  headers: http.IncomingHttpHeaders;
}

/** One request over the unix socket (socketPath) or TCP (host:port). */
export function request(
  where: { socketPath: string } | { host: string; port: number },
  method: string,
  p: string,
  opts: { body?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ ...where, method, path: p, headers: opts.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body,
          json: () => JSON.parse(body) as Json,
          headers: res.headers,
        }),
      );
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

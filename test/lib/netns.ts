// Test hosts in network namespaces, and small TCP/UDP clients and servers
// run as child processes (in a cgroup, or in a namespace).
//
// Each TestNet is a namespace joined to the root namespace by a veth pair:
//   root side  10.248.N.1/24  fd00:248:N::1/64
//   namespace  10.248.N.2/24  fd00:248:N::2/64
// Only these addresses and loopback are ever used. remove() deletes the
// namespace (which takes the veth pair with it) and is safe to call twice.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface TestNet {
  ns: string;
  hostIf: string;
  hostV4: string;
  nsV4: string;
  hostV6: string;
  nsV6: string;
  remove(): void;
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A namespace with a veth to the root namespace; n in 1..254 picks the subnet. */
export function makeTestNet(n: number): TestNet {
  const ns = `osp-np${n}-${process.pid}`;
  const hostIf = `ospnp${n}h`;
  const nsIf = `ospnp${n}n`;
  const net: TestNet = {
    ns,
    hostIf,
    hostV4: `10.248.${n}.1`,
    nsV4: `10.248.${n}.2`,
    hostV6: `fd00:248:${n}::1`,
    nsV6: `fd00:248:${n}::2`,
    remove() {
      try {
        ip('netns', 'del', ns);
      } catch {}
      try {
        ip('link', 'del', hostIf);
      } catch {}
    },
  };
  // a leftover of a crashed run with the same names
  net.remove();
  try {
    ip('netns', 'add', ns);
    ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf);
    ip('link', 'set', nsIf, 'netns', ns);
    ip('addr', 'add', `${net.hostV4}/24`, 'dev', hostIf);
    ip('-6', 'addr', 'add', `${net.hostV6}/64`, 'dev', hostIf, 'nodad');
    ip('link', 'set', hostIf, 'up');
    ip('-n', ns, 'addr', 'add', `${net.nsV4}/24`, 'dev', nsIf);
    ip('-n', ns, '-6', 'addr', 'add', `${net.nsV6}/64`, 'dev', nsIf, 'nodad');
    ip('-n', ns, 'link', 'set', nsIf, 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
  } catch (err) {
    net.remove();
    throw new Error(`set up test namespace ${ns}: ${(err as { stderr?: Buffer }).stderr?.toString() ?? err}`);
  }
  return net;
}

/** Where a child runs: in a cgroup of the root namespace, or in a test namespace. */
export type Place = { cgroup: string } | { netns: string };

function spawnNode(place: Place, script: string, arg: unknown): ChildProcess {
  const argv = [process.execPath, '-e', script, JSON.stringify(arg)];
  if ('cgroup' in place) {
    // the wrapper joins the cgroup, then becomes node
    return spawn('/bin/sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', place.cgroup, ...argv], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
  }
  return spawn('ip', ['netns', 'exec', place.netns, ...argv], { stdio: ['pipe', 'pipe', 'inherit'] });
}

const SERVER = `
const net = require('node:net'), dgram = require('node:dgram');
const a = JSON.parse(process.argv[1]);
if (a.proto === 'tcp') {
  const s = net.createServer((c) => {
    c.on('data', (d) => c.write('echo:' + d));
    c.on('error', () => {});
  });
  s.listen({ host: a.host, port: a.port }, () => console.log(JSON.stringify({ ready: s.address().port })));
} else {
  const s = dgram.createSocket(a.host.includes(':') ? 'udp6' : 'udp4');
  s.on('message', (m, r) => s.send('echo:' + m, r.port, r.address, () => {}));
  s.on('error', (e) => console.log(JSON.stringify({ error: e.code })));
  s.bind(a.port, a.host, () => console.log(JSON.stringify({ ready: s.address().port })));
}
`;

export interface Server {
  port: number;
  child: ChildProcess;
  stop(): void;
}

/** An echo server ("echo:" + what it got). port 0 picks one. Resolves once it listens. */
export async function startServer(
  place: Place,
  proto: 'tcp' | 'udp',
  host: string,
  port = 0,
): Promise<Server> {
  const child = spawnNode(place, SERVER, { proto, host, port });
  const line = await firstLine(child, 5000);
  const msg = JSON.parse(line) as { ready?: number; error?: string };
  if (msg.ready === undefined) {
    child.kill('SIGKILL');
    throw new Error(`server ${proto} ${host}:${port}: ${msg.error}`);
  }
  return {
    port: msg.ready,
    child,
    stop() {
      child.kill('SIGKILL');
    },
  };
}

const CLIENT = `
const net = require('node:net'), dgram = require('node:dgram');
const a = JSON.parse(process.argv[1]);
const done = (r) => { console.log(JSON.stringify(r)); process.exit(0); };
setTimeout(() => done({ ok: false, code: 'TIMEOUT' }), a.timeoutMs);
if (a.proto === 'tcp') {
  const c = net.connect({ host: a.host, port: a.port, localAddress: a.localAddress });
  c.on('connect', () => c.write(a.msg));
  c.on('data', (d) => { c.end(); done({ ok: true, reply: String(d) }); });
  c.on('error', (e) => done({ ok: false, code: e.code }));
} else {
  const s = dgram.createSocket(a.host.includes(':') ? 'udp6' : 'udp4');
  s.on('message', (m) => done({ ok: true, reply: String(m) }));
  s.on('error', (e) => done({ ok: false, code: e.code }));
  s.send(a.msg, a.port, a.host, (e) => { if (e) done({ ok: false, code: e.code }); });
}
`;

export interface ClientResult {
  ok: boolean;
  reply?: string;
  /** EPERM, ECONNREFUSED, TIMEOUT, ... */
  code?: string;
}

/** One request/echo exchange; resolves with what the application saw. */
export async function runClient(
  place: Place,
  proto: 'tcp' | 'udp',
  host: string,
  port: number,
  opts: { msg?: string; timeoutMs?: number } = {},
): Promise<ClientResult> {
  const timeoutMs = opts.timeoutMs ?? 1500;
  const child = spawnNode(place, CLIENT, { proto, host, port, msg: opts.msg ?? 'hi', timeoutMs });
  try {
    return JSON.parse(await firstLine(child, timeoutMs + 5000)) as ClientResult;
  } finally {
    child.kill('SIGKILL');
  }
}

const STREAMER = `
const net = require('node:net');
const a = JSON.parse(process.argv[1]);
let echoes = 0;
const c = net.connect({ host: a.host, port: a.port });
c.on('connect', () => { console.log(JSON.stringify({ connected: true })); setInterval(() => c.write('x'), a.everyMs); });
c.on('data', () => { echoes++; console.log(JSON.stringify({ echoes })); });
c.on('error', (e) => console.log(JSON.stringify({ error: e.code })));
`;

export interface Streamer {
  child: ChildProcess;
  /** echoes received so far */
  echoes(): number;
  connected(): boolean;
  lastError(): string | undefined;
  stop(): void;
}

/** A TCP client that keeps one connection open and sends a byte every `everyMs`. */
export function startStreamer(place: Place, host: string, port: number, everyMs = 50): Streamer {
  const child = spawnNode(place, STREAMER, { host, port, everyMs });
  let echoes = 0;
  let connected = false;
  let error: string | undefined;
  const rl = createInterface({ input: child.stdout! });
  rl.on('line', (line) => {
    const m = JSON.parse(line) as { echoes?: number; connected?: boolean; error?: string };
    if (m.echoes !== undefined) echoes = m.echoes;
    if (m.connected) connected = true;
    if (m.error) error = m.error;
  });
  return {
    child,
    echoes: () => echoes,
    connected: () => connected,
    lastError: () => error,
    stop() {
      child.kill('SIGKILL');
    },
  };
}

function firstLine(child: ChildProcess, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => {
      rl.close();
      reject(new Error(`no output from child within ${ms} ms`));
    }, ms);
    rl.once('line', (l) => {
      clearTimeout(timer);
      rl.close();
      resolve(l);
    });
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`child exited (${code ?? sig}) before writing a line`));
    });
  });
}

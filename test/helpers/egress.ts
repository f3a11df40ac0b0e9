/**
 * Clients of the egress port, for tests: a raw CONNECT, an absolute-form
 * request through node:http, and real client programs (curl, python3, Node 24)
 * run as child processes with only the proxy variables a test gives them.
 */
import { execFile } from 'node:child_process';
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { ROOT } from './process.ts';

/** The project's Node 24 (the system node is older). */
export const NODE = join(ROOT, 'node_modules/.bin/node');

const PROXY_VARIABLES = ['http_proxy', 'https_proxy', 'all_proxy', 'no_proxy', 'node_use_env_proxy', 'node_extra_ca_certs'];

/** The test process's environment without any proxy settings, plus `extra`. */
export function clientEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!PROXY_VARIABLES.includes(name.toLowerCase())) env[name] = value;
  }
  return { ...env, ...extra };
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program to its end (at most `timeoutMs`) and collects its output. */
export function run(file: string, args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs = 20_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(file, args, { env, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

export interface Tunnel {
  readonly socket: Socket;
  /** Status of the CONNECT answer. */
  readonly status: number;
  /** The CONNECT answer, head and whatever body came with it. */
  readonly response: string;
}

/**
 * Sends `CONNECT target` to the egress port and resolves once the answer's
 * head is in. On 200 the socket is the tunnel (no bytes of it consumed).
 */
export function openConnect(proxyPort: number, target: string, headers: Record<string, string> = {}): Promise<Tunnel> {
  return new Promise((resolve, reject) => {
    const socket = connect(proxyPort, '127.0.0.1');
    let received = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no CONNECT answer; got ${JSON.stringify(received.toString('latin1'))}`));
    }, 5_000);
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = received.subarray(0, end).toString('latin1');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
      if (status === 200) {
        clearTimeout(timer);
        socket.off('data', onData);
        socket.pause();
        const rest = received.subarray(end + 4);
        if (rest.length > 0) socket.unshift(rest);
        resolve({ socket, status, response: head });
        return;
      }
      // A refusal: read to the end (the sidecar closes).
      socket.off('data', onData);
      const chunks: Buffer[] = [received];
      socket.on('data', (more: Buffer) => chunks.push(more));
      socket.once('close', () => {
        clearTimeout(timer);
        resolve({ socket, status, response: Buffer.concat(chunks).toString('latin1') });
      });
    };
    socket.on('data', onData);
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('connect', () => {
      const lines = [`CONNECT ${target} HTTP/1.1`, `Host: ${target}`, ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`)];
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    });
  });
}

/** Reads from `socket` until it closes (or `timeoutMs`), as latin1 text. */
export function readAll(socket: Socket, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const done = () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    };
    const timer = setTimeout(done, timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('close', done);
    socket.resume();
  });
}

/** Writes `word` on `socket` (a tunnel to an echo server) and resolves with what came back: `word`, or less when the tunnel closed first (at most 5 s). */
export function echoThrough(socket: Socket, word: string): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const finish = () => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', finish);
      resolve(got);
    };
    const onData = (chunk: Buffer) => {
      got += chunk.toString('latin1');
      if (got.length >= word.length) finish();
    };
    const timer = setTimeout(finish, 5_000);
    socket.on('data', onData);
    socket.once('close', finish);
    socket.resume();
    socket.write(word);
  });
}

/** True when the other side closes `socket` within `ms` (false when it is still open then); reads and drops what comes. */
export function closedWithin(socket: Socket, ms: number): Promise<boolean> {
  if (socket.destroyed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.resume();
  });
}

export interface ProxiedResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** One request through the proxy with the request line `METHOD target` (absolute-form or anything else). */
export function proxiedRequest(
  proxyPort: number,
  target: string,
  options: { method?: string; headers?: OutgoingHttpHeaders; body?: string | Buffer } = {},
): Promise<ProxiedResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: proxyPort, method: options.method ?? 'GET', path: target, headers: options.headers, agent: false });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Access-log lines of a sidecar process (`log: "access"`). */
export function accessLines(lines: ReadonlyArray<Record<string, unknown>>): Array<Record<string, unknown>> {
  return lines.filter((line) => line.log === 'access');
}

/** The access line of request id `reqId`, once the process has written it. */
export function accessLineOf(lines: ReadonlyArray<Record<string, unknown>>, reqId: string): Promise<Record<string, unknown>> {
  return eventually(() => accessLines(lines).find((line) => line.reqId === reqId));
}

/** Polls `check` every 25 ms until it returns a value, at most `timeoutMs`. */
export async function eventually<T>(check: () => T | undefined, timeoutMs = 5_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * Loopback helpers: free ports, bounded readiness polls and one-shot probes.
 * Every wait here has a deadline; nothing talks to anything but 127.0.0.1.
 */
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import type { Proc } from './procs.ts';

export const HOST = '127.0.0.1';

/** A port that was free a moment ago (bind 0, read, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A response read whole (probes only: bodies are small or counted). */
export interface Probe {
  status: number;
  headers: http.IncomingHttpHeaders;
  bytes: number;
  text: string;
}

/**
 * One HTTP request with a hard deadline. `absolute` sends an absolute-form
 * request (forward proxy) to host:port.
 */
export function probe(
  port: number,
  path: string,
  timeoutMs = 2000,
  extra?: Readonly<Record<string, string>>,
  scheme: 'http' | 'https' = 'http',
): Promise<Probe> {
  // An absolute-form path carries its own Host, as a forward-proxy client sends it.
  const headers = { ...(path.startsWith('http://') ? { host: new URL(path).host } : {}), ...extra };
  // The bench's certificate is self-signed: what is checked here is the answer, not the certificate.
  const send = scheme === 'https' ? (options: https.RequestOptions, cb: (res: http.IncomingMessage) => void) => https.request({ ...options, rejectUnauthorized: false }, cb) : http.request;
  return new Promise((resolve, reject) => {
    const req = send({ host: HOST, port, path, headers, agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes <= 4096) chunks.push(chunk);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes, text: Buffer.concat(chunks).toString('utf8', 0, 300) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs}ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** One HTTP/2 request (a gRPC unary call when `grpc`) with a hard deadline: status, body bytes, grpc-status. */
export function probeH2(port: number, path: string, tls: boolean, grpc: boolean, timeoutMs = 2000): Promise<{ status: number; bytes: number; grpcStatus?: string }> {
  return new Promise((resolve, reject) => {
    // The bench's certificate is self-signed: what is checked here is the answer, not the certificate.
    const session = http2.connect(`${tls ? 'https' : 'http'}://${HOST}:${port}`, tls ? { rejectUnauthorized: false } : {});
    const timer = setTimeout(() => session.destroy(new Error(`no HTTP/2 answer within ${timeoutMs}ms`)), timeoutMs);
    session.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    const headers = grpc ? { ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' } : { ':path': path };
    const stream = session.request(headers);
    let status = 0;
    let bytes = 0;
    let grpcStatus: string | undefined;
    stream.on('response', (head) => {
      status = Number(head[':status']);
      if (head['grpc-status'] !== undefined) grpcStatus = String(head['grpc-status']);
    });
    stream.on('trailers', (trailers) => (grpcStatus = String(trailers['grpc-status'])));
    stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
    stream.on('end', () => {
      clearTimeout(timer);
      session.close();
      resolve({ status, bytes, grpcStatus });
    });
    stream.on('error', reject);
    stream.end(grpc ? Buffer.concat([Buffer.from([0, 0, 0, 0, 5]), Buffer.from('hello')]) : undefined);
  });
}

/** Opens a CONNECT tunnel and reads the proxy's status line; the socket is closed after. */
export function probeConnect(proxyPort: number, target: string, timeoutMs = 2000): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(proxyPort, HOST);
    let head = '';
    const timer = setTimeout(() => socket.destroy(new Error(`no CONNECT answer within ${timeoutMs}ms`)), timeoutMs);
    socket.on('connect', () => socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`));
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n');
      if (end >= 0) {
        clearTimeout(timer);
        socket.destroy();
        resolve(Number(head.slice(0, end).split(' ')[1]));
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      reject(new Error('closed before a CONNECT answer'));
    });
  });
}

/**
 * Polls `check` until it returns true, the process exits, or `timeoutMs`
 * passes. Returns undefined when ready, else the reason it is not.
 */
export async function waitUntil(what: string, check: () => Promise<boolean>, proc: Proc | undefined, timeoutMs: number): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (proc?.exit !== undefined) return `${proc.name} exited (${proc.exit}) before ${what}`;
    try {
      if (await check()) return undefined;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await sleep(100);
  }
  return `${what} not reached within ${timeoutMs}ms${last ? ` (last error: ${last})` : ''}`;
}

/** Ready when `GET path` on port answers `status` (default: any). */
export function waitHttp(port: number, path: string, proc: Proc | undefined, timeoutMs: number, status?: number): Promise<string | undefined> {
  return waitUntil(`http://${HOST}:${port}${path}${status ? ` answering ${status}` : ''}`, async () => {
    const res = await probe(port, path, 1000);
    return status === undefined || res.status === status;
  }, proc, timeoutMs);
}

/** Ready when a TCP connection to port is accepted. */
export function waitTcp(port: number, proc: Proc | undefined, timeoutMs: number): Promise<string | undefined> {
  return waitUntil(`${HOST}:${port} accepting`, () => new Promise<boolean>((resolve, reject) => {
    const socket = net.connect(port, HOST, () => {
      socket.destroy();
      resolve(true);
    });
    socket.setTimeout(1000, () => socket.destroy(new Error('connect timeout')));
    socket.on('error', reject);
  }), proc, timeoutMs);
}

/**
 * HTTP/2 on loopback for tests: one request over a Node http2 session
 * (h2c or TLS), read whole with its trailers; and HTTP/2 upstreams (h2c, or
 * h2 over TLS with HTTP/1.1 allowed beside it) that answer as told.
 */
import { connect, createSecureServer, createServer, type ClientHttp2Session, type Http2Server, type Http2SecureServer, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';

export interface H2Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  trailers: IncomingHttpHeaders | undefined;
  /** The HEADERS frame carried END_STREAM (a trailers-only answer). */
  endStreamOnHead: boolean;
}

/** A session to `authority` (http://... for h2c, https://... with `ca`); bounded connect time. */
export function h2Session(authority: string, options: { ca?: string; servername?: string } = {}): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = connect(authority, options.ca ? { ca: options.ca, servername: options.servername ?? 'localhost' } : {});
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error(`no HTTP/2 session to ${authority} within 5 s`));
    }, 5_000);
    session.once('connect', () => {
      clearTimeout(timer);
      resolve(session);
    });
    session.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** One request on `session`, read whole (bounded: 10 s). */
export function h2Request(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: Buffer | string): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': body === undefined ? 'GET' : 'POST', ...headers }, { endStream: body === undefined });
    const chunks: Buffer[] = [];
    let head: IncomingHttpHeaders = {};
    let status = 0;
    let endStreamOnHead = false;
    let trailers: IncomingHttpHeaders | undefined;
    const timer = setTimeout(() => {
      stream.close();
      reject(new Error(`no complete answer to ${String(headers[':path'])} within 10 s`));
    }, 10_000);
    stream.on('response', (fields, flags) => {
      status = Number(fields[':status']);
      head = fields;
      endStreamOnHead = (flags & 0x1) !== 0;
    });
    stream.on('trailers', (fields) => (trailers = fields));
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => {
      clearTimeout(timer);
      resolve({ status, headers: head, body: Buffer.concat(chunks), trailers, endStreamOnHead });
    });
    stream.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    if (body !== undefined) stream.end(body);
  });
}

export interface TestH2Server {
  readonly server: Http2Server | Http2SecureServer;
  readonly port: number;
  /** http://127.0.0.1:PORT or https://127.0.0.1:PORT */
  readonly url: string;
  close(): Promise<void>;
}

async function listen(server: Http2Server | Http2SecureServer, scheme: 'http' | 'https'): Promise<TestH2Server> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: `${scheme}://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Open sessions would hold close() forever.
        (server as unknown as { closeAllSessions?: () => void }).closeAllSessions?.();
        setTimeout(resolve, 1_000).unref();
      }),
  };
}

/** A cleartext HTTP/2 upstream (h2c, prior knowledge). */
export function h2cServer(onStream: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number) => void): Promise<TestH2Server> {
  const server = createServer();
  const sessions = new Set<{ destroy(): void }>();
  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  server.on('stream', onStream);
  (server as unknown as { closeAllSessions: () => void }).closeAllSessions = () => sessions.forEach((session) => session.destroy());
  return listen(server, 'http');
}

/** An HTTPS upstream speaking h2 (and HTTP/1.1 when `allowHTTP1`), with the given certificate. */
export function h2TlsServer(
  tls: { cert: string; key: string },
  onStream: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number) => void,
  allowHTTP1 = false,
  onHttp1?: (req: import('node:http2').Http2ServerRequest, res: import('node:http2').Http2ServerResponse) => void,
): Promise<TestH2Server> {
  const server = createSecureServer({ ...tls, allowHTTP1 });
  const sessions = new Set<{ destroy(): void }>();
  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  server.on('stream', onStream);
  if (onHttp1) server.on('request', (req, res) => {
    if (req.httpVersion !== '2.0') onHttp1(req, res);
  });
  (server as unknown as { closeAllSessions: () => void }).closeAllSessions = () => sessions.forEach((session) => session.destroy());
  return listen(server, 'https');
}

/** Answers with what the upstream saw: method, path, HTTP version, headers (pseudo-headers included). */
export function echoStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
  let bytes = 0;
  stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
  stream.on('end', () => {
    if (stream.destroyed) return;
    stream.respond({ ':status': 200, 'content-type': 'application/json' });
    stream.end(JSON.stringify({ httpVersion: '2', headers, bytes }));
  });
  stream.on('error', () => {});
}

/** Raw HTTP/2 frames, for clients that misbehave on purpose (abuse tests). */
export const FRAME = { DATA: 0x0, HEADERS: 0x1, RST_STREAM: 0x3, SETTINGS: 0x4, PING: 0x6, GOAWAY: 0x7 } as const;

/** One frame: 9-byte header (length, type, flags, stream id), then the payload. */
export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/**
 * A HEADERS frame of a GET (END_STREAM | END_HEADERS), HPACK-encoded by
 * hand: :method GET, :scheme http, :path / from the static table, and a
 * literal :authority (RFC 7541 appendix A, 6.2.2).
 */
export function getHeaders(streamId: number, authority: string): Buffer {
  const name = Buffer.from(authority, 'latin1');
  const block = Buffer.concat([Buffer.from([0x82, 0x86, 0x84, 0x01, name.length]), name]);
  return frame(FRAME.HEADERS, 0x5, streamId, block);
}

/** RST_STREAM with CANCEL (8). */
export function rstStream(streamId: number): Buffer {
  const code = Buffer.alloc(4);
  code.writeUInt32BE(8);
  return frame(FRAME.RST_STREAM, 0, streamId, code);
}

/** The error code of the first GOAWAY among `bytes` (a server's frames after its SETTINGS), or undefined. */
export function goawayCode(bytes: Buffer): number | undefined {
  let at = 0;
  while (at + 9 <= bytes.length) {
    const length = bytes.readUIntBE(at, 3);
    const type = bytes[at + 3];
    if (at + 9 + length > bytes.length) return undefined;
    if (type === FRAME.GOAWAY) return bytes.readUInt32BE(at + 9 + 4);
    at += 9 + length;
  }
  return undefined;
}

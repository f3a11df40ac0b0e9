/**
 * WebSocket clients and servers for tests (the `ws` package): an echo server
 * on a node:http or https server, and a client that says how its upgrade
 * ended.
 */
import { Agent, type ClientRequest, type IncomingMessage, type RequestOptions, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Server as HttpsServer } from 'node:https';
import { WebSocket, WebSocketServer, type ClientOptions } from 'ws';

/** Echoes every message as `echo:MESSAGE`; the first message says `hello PATH`. Records each upgrade request's headers. */
export function attachEchoServer(server: Server | HttpsServer): { wss: WebSocketServer; requests: IncomingMessage['headers'][]; paths: string[] } {
  const wss = new WebSocketServer({ server });
  const requests: IncomingMessage['headers'][] = [];
  const paths: string[] = [];
  wss.on('connection', (socket, req) => {
    requests.push(req.headers);
    paths.push(req.url ?? '');
    socket.send(`hello ${req.url}`);
    socket.on('message', (data) => socket.send(`echo:${data.toString()}`));
  });
  return { wss, requests, paths };
}

/** How an upgrade ended: open (with the socket and its first message), answered otherwise, or failed without an answer. */
export type UpgradeResult =
  | { readonly kind: 'open'; readonly ws: WebSocket; readonly hello: string }
  | { readonly kind: 'answered'; readonly status: number; readonly error: string | undefined; readonly body: string }
  | { readonly kind: 'failed'; readonly message: string };

/** Opens a WebSocket to `url` and waits (at most 5 s) until it is open and greeted, or refused. */
export function upgrade(url: string, options: ClientOptions = {}): Promise<UpgradeResult> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, options);
    const timer = setTimeout(() => {
      ws.terminate();
      resolve({ kind: 'failed', message: 'no answer in 5 s' });
    }, 5_000);
    ws.once('message', (data) => {
      clearTimeout(timer);
      resolve({ kind: 'open', ws, hello: data.toString() });
    });
    ws.once('unexpected-response', (_req, res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        clearTimeout(timer);
        ws.terminate();
        const error = res.headers['x-sidecar-error'];
        resolve({ kind: 'answered', status: res.statusCode ?? 0, error: typeof error === 'string' ? error : undefined, body: Buffer.concat(chunks).toString() });
      });
    });
    ws.on('error', (err) => {
      clearTimeout(timer);
      resolve({ kind: 'failed', message: err.message });
    });
  });
}

/** Sends `text` and resolves with the next message (at most 5 s). */
export function roundTrip(ws: WebSocket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no reply to ${text}`)), 5_000);
    ws.once('message', (data) => {
      clearTimeout(timer);
      resolve(data.toString());
    });
    ws.send(text);
  });
}

/**
 * An http.Agent that sends every request to the HTTP proxy on
 * 127.0.0.1:`proxyPort` in absolute-form (`GET http://host:port/path`), as
 * http-proxy-agent does: how a `ws://` client goes through HTTP_PROXY.
 */
export function absoluteFormAgent(proxyPort: number): Agent {
  const agent = new Agent();
  const addRequest = (agent as unknown as { addRequest(req: ClientRequest, options: RequestOptions): void }).addRequest.bind(agent);
  return Object.assign(agent, {
    addRequest(req: ClientRequest, options: RequestOptions) {
      // The head is written at the first write, after this: the request line gets the absolute target.
      req.path = `http://${options.host}:${options.port}${req.path}`;
      addRequest(req, options);
    },
    createConnection: () => connect(proxyPort, '127.0.0.1'),
  });
}

/** Sends `head` and resolves with the answer's head (at most 5 s) and the socket, for what follows. */
export function answerHead(port: number, head: string): Promise<{ head: string; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let seen = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer head in 5 s; got ${JSON.stringify(seen)}`));
    }, 5_000);
    socket.on('error', () => undefined);
    socket.on('data', function onData(chunk: Buffer) {
      seen += chunk.toString('latin1');
      const end = seen.indexOf('\r\n\r\n');
      if (end === -1) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      if (end + 4 < seen.length) socket.unshift(Buffer.from(seen.slice(end + 4), 'latin1'));
      resolve({ head: seen.slice(0, end), socket });
    });
    socket.write(head);
  });
}

/** The next `length` bytes from `socket` (at most 5 s). */
export function read(socket: Socket, length: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const timer = setTimeout(() => reject(new Error(`got ${JSON.stringify(got)} in 5 s`)), 5_000);
    socket.on('data', (chunk: Buffer) => {
      got += chunk.toString('latin1');
      if (got.length >= length) {
        clearTimeout(timer);
        resolve(got);
      }
    });
    socket.resume();
  });
}

/** Header lines of a head, lower-cased names. */
export function headerLines(head: string): Map<string, string[]> {
  const headers = new Map<string, string[]>();
  for (const line of head.split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
  }
  return headers;
}

/** The Sec-WebSocket-Key of upgradeHead() (RFC 6455's example). */
export const WEBSOCKET_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

/** A raw WebSocket upgrade request head for `target` with `Host: host`, and `extra` header lines. */
export function upgradeHead(target: string, extra: readonly string[] = [], host = 'client.example'): string {
  const lines = [`GET ${target} HTTP/1.1`, `Host: ${host}`, 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', `Sec-WebSocket-Key: ${WEBSOCKET_KEY}`, ...extra];
  if (!extra.some((line) => line.toLowerCase().startsWith('connection:'))) lines.push('Connection: Upgrade');
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/**
 * WebSocket clients and servers for tests (the `ws` package): an echo server
 * on a node:http or https server, and a client that says how its upgrade
 * ended.
 */
import { Agent, type ClientRequest, type IncomingMessage, type RequestOptions, type Server } from 'node:http';
import { connect } from 'node:net';
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

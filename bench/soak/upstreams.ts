/**
 * The soak's upstreams, in the soak process: one HTTP server whose paths
 * behave well or badly on purpose (and that echoes WebSocket messages), and a
 * TCP echo server for blind CONNECT tunnels. Loopback only, port 0.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { WebSocketServer } from 'ws';

const SMALL = 'ok\n';
const BIG = Buffer.alloc(256 * 1024, 'b');

export interface SoakUpstreams {
  readonly httpPort: number;
  readonly echoPort: number;
  close(): Promise<void>;
}

function answer(req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? '/').split('?')[0];
  switch (path) {
    case '/ok':
    case '/healthz':
      res.end(SMALL);
      return;
    case '/big':
      res.end(BIG);
      return;
    case '/fail':
      res.statusCode = 500;
      res.end('failing on purpose\n');
      return;
    case '/reset':
      req.socket.resetAndDestroy();
      return;
    case '/slow': {
      // The head after 300 ms, then the body in 5 pieces over a second.
      let sent = 0;
      const timer = setTimeout(function piece() {
        if (sent === 0) res.writeHead(200, { 'content-type': 'text/plain' });
        res.write(`piece ${sent}\n`);
        if (++sent < 5) timers.add(setTimeout(piece, 200));
        else res.end();
      }, 300);
      const timers = new Set([timer]);
      res.once('close', () => timers.forEach(clearTimeout));
      return;
    }
    case '/echo': {
      let bytes = 0;
      req.on('data', (chunk: Buffer) => (bytes += chunk.length));
      req.on('end', () => res.end(`${bytes}\n`));
      return;
    }
    default:
      res.statusCode = 404;
      res.end('not here\n');
  }
}

function listen(server: Server | TcpServer): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

export async function startUpstreams(): Promise<SoakUpstreams> {
  const http = createServer({ keepAliveTimeout: 5_000 }, answer);
  const websockets = new WebSocketServer({ server: http });
  websockets.on('connection', (socket) => {
    socket.on('message', (data, binary) => socket.send(data, { binary }));
    socket.on('error', () => socket.terminate());
  });
  const echo = createTcpServer((socket) => {
    socket.on('error', () => socket.destroy());
    socket.pipe(socket);
  });
  const [httpPort, echoPort] = await Promise.all([listen(http), listen(echo)]);
  return {
    httpPort,
    echoPort,
    close: async () => {
      for (const client of websockets.clients) client.terminate();
      http.closeAllConnections();
      await Promise.all([new Promise((r) => http.close(r)), new Promise((r) => echo.close(r))]);
    },
  };
}

/** A port nothing listens on (bound, then closed at once): connections to it are refused. */
export async function deadPort(): Promise<number> {
  const server = createTcpServer();
  const port = await listen(server);
  await new Promise((resolve) => server.close(resolve));
  return port;
}

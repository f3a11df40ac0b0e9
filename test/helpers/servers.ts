/**
 * Real servers for tests, always on 127.0.0.1 with an ephemeral port.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TestServer {
  readonly server: Server;
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

/** Binds an http or https server to 127.0.0.1:0; `close` also ends its open connections. */
export async function listenOnLoopback<S extends Server>(server: S): Promise<{ server: S; port: number; close(): Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Starts a node:http server on 127.0.0.1:0. */
export async function startHttpServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestServer> {
  const listening = await listenOnLoopback(createServer(handler));
  return { ...listening, url: `http://127.0.0.1:${listening.port}` };
}

/** An upstream that answers with what it received, as JSON. */
export function echoServer(): Promise<TestServer> {
  return startHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = JSON.stringify({
        method: req.method,
        url: req.url,
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'echo' });
      res.end(body);
    });
  });
}

/** A port with nothing listening on it (bound, then closed). */
export async function closedPort(): Promise<number> {
  const probe = await startHttpServer(() => undefined);
  await probe.close();
  return probe.port;
}

/**
 * Raw TCP exchanges, for requests a well-behaved client would never send.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/** Sends `data` (all at once, or piece by piece with a pause) and returns all bytes received until the server closes or `timeoutMs`. */
export async function rawExchange(port: number, data: string | string[], options: { timeoutMs?: number; pauseMs?: number } = {}): Promise<string> {
  return (await rawConversation(port, data, options)).text;
}

/** rawExchange, also saying which local port the client used (the server sees it as the client's port). */
export function rawConversation(port: number, data: string | string[], options: { timeoutMs?: number; pauseMs?: number } = {}): Promise<{ text: string; localPort: number }> {
  const pieces = Array.isArray(data) ? data : [data];
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let localPort = 0;
    socket.once('connect', () => (localPort = socket.localPort ?? 0));
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), localPort });
    };
    const timer = setTimeout(done, options.timeoutMs ?? 3_000);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('close', done);
    socket.on('error', done);
    socket.on('connect', async () => {
      for (const piece of pieces) {
        if (socket.destroyed) return;
        socket.write(piece);
        if (options.pauseMs) await new Promise((r) => setTimeout(r, options.pauseMs));
      }
    });
  });
}

/** A TCP server whose connection handler does something no HTTP server should. */
export async function startTcpServer(onConnection: (socket: Socket) => void): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

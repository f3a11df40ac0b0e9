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

/** A raw HTTP/1.1 response taken apart: status, head (lower-cased names), body (de-chunked) and any trailers. */
export interface RawResponse {
  readonly status: number;
  readonly head: string;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly trailers: Record<string, string>;
}

/** Parses the first response in `text` (what rawExchange returned); a chunked body is decoded. */
export function parseRawResponse(text: string): RawResponse {
  const split = text.indexOf('\r\n\r\n');
  const head = split === -1 ? text : text.slice(0, split);
  const headerLines = (block: string) => {
    const fields: Record<string, string> = {};
    for (const line of block.split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) fields[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    return fields;
  };
  const headers = headerLines(head.slice(head.indexOf('\r\n') + 2));
  let rest = split === -1 ? '' : text.slice(split + 4);
  let body = '';
  let trailers: Record<string, string> = {};
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    for (let guard = 0; guard < 100_000; guard++) {
      const lineEnd = rest.indexOf('\r\n');
      if (lineEnd === -1) break;
      const size = parseInt(rest.slice(0, lineEnd), 16);
      if (!(size > 0)) {
        const end = rest.indexOf('\r\n\r\n', lineEnd);
        trailers = headerLines(rest.slice(lineEnd + 2, end === -1 ? undefined : end));
        break;
      }
      body += rest.slice(lineEnd + 2, lineEnd + 2 + size);
      rest = rest.slice(lineEnd + 2 + size + 2);
    }
  } else {
    body = rest;
  }
  return { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0), head, headers, body, trailers };
}

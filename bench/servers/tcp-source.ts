/**
 * A TCP source for CONNECT bulk tests: every accepted connection receives
 * 64 KiB chunks as fast as the reader drains them (backpressure respected);
 * whatever the client sends is discarded. Usage: `node bench/servers/tcp-source.ts PORT`.
 */
import net from 'node:net';

const port = Number(process.argv[2]);
const CHUNK = Buffer.alloc(64 * 1024, 'y');

const server = net.createServer((socket) => {
  socket.on('error', () => socket.destroy());
  socket.on('data', () => {});
  const pump = () => {
    while (!socket.destroyed && socket.write(CHUNK));
  };
  socket.on('drain', pump);
  pump();
});
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));

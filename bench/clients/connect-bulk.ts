/**
 * CONNECT bulk-throughput client, run as its own process. Opens N tunnels
 * through a proxy (or N direct connections when no proxy is given) to the TCP
 * source, reads as fast as it can, and prints one JSON line:
 * `{ mbps, bytes, seconds, tunnels, opened, errors }` (MB = 10^6 bytes).
 * Usage: `node bench/clients/connect-bulk.ts '{"proxyPort":P,"targetPort":T,"tunnels":4,"seconds":5,"warmupSeconds":1}'`.
 */
import net from 'node:net';

interface Options {
  proxyPort?: number;
  targetPort: number;
  tunnels: number;
  seconds: number;
  warmupSeconds: number;
}

const options = JSON.parse(process.argv[2] ?? '{}') as Options;
const target = `127.0.0.1:${options.targetPort}`;
const sockets: net.Socket[] = [];
let bytes = 0;
let opened = 0;
const errors: string[] = [];

function open(): void {
  const socket = net.connect(options.proxyPort ?? options.targetPort, '127.0.0.1');
  sockets.push(socket);
  let tunnelled = options.proxyPort === undefined;
  let head = '';
  socket.on('connect', () => {
    if (tunnelled) opened++;
    else socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  });
  socket.on('data', (chunk: Buffer) => {
    if (tunnelled) {
      bytes += chunk.length;
      return;
    }
    head += chunk.toString('latin1');
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    const status = head.slice(0, head.indexOf('\r\n')).split(' ')[1];
    if (status !== '200') {
      errors.push(`CONNECT answered ${head.slice(0, head.indexOf('\r\n'))}`);
      socket.destroy();
      return;
    }
    tunnelled = true;
    opened++;
    bytes += Buffer.byteLength(head, 'latin1') - (end + 4);
  });
  socket.on('error', (err) => errors.push(err.message));
}

for (let i = 0; i < options.tunnels; i++) open();

const guard = setTimeout(() => finish(), (options.warmupSeconds + options.seconds + 10) * 1000);
setTimeout(() => {
  const startBytes = bytes;
  const startTime = process.hrtime.bigint();
  setTimeout(() => {
    const seconds = Number(process.hrtime.bigint() - startTime) / 1e9;
    const moved = bytes - startBytes;
    finish({ mbps: moved / seconds / 1e6, bytes: moved, seconds });
  }, options.seconds * 1000);
}, options.warmupSeconds * 1000);

function finish(result?: { mbps: number; bytes: number; seconds: number }): void {
  clearTimeout(guard);
  for (const socket of sockets) socket.destroy();
  process.stdout.write(`${JSON.stringify({ ...(result ?? { mbps: 0, bytes: 0, seconds: 0 }), tunnels: options.tunnels, opened, errors: errors.slice(0, 5), errorCount: errors.length })}\n`);
  process.exit(0);
}

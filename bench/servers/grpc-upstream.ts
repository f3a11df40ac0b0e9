/**
 * The gRPC upstream of the gRPC scenarios: cleartext HTTP/2 (h2c), one unary
 * method that answers every call with the same small message, trailers
 * `grpc-status: 0`. Written on node:http2 directly, as a gRPC server frames
 * it (a 5-byte prefix: compressed flag, length), so the bench measures the
 * proxies rather than a gRPC library. Usage: `node bench/servers/grpc-upstream.ts PORT`.
 */
import http2 from 'node:http2';

const port = Number(process.argv[2]);
const MESSAGE = Buffer.from('hello');
const FRAMED = Buffer.concat([Buffer.from([0, 0, 0, 0, MESSAGE.length]), MESSAGE]);

const server = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
server.on('stream', (stream) => {
  stream.on('error', () => {});
  stream.resume();
  stream.on('end', () => {
    if (stream.destroyed) return;
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(FRAMED);
  });
});
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));

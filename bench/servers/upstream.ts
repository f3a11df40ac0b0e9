/**
 * The upstream every proxy forwards to: node:http, keep-alive, two answers
 * built once. `/1mib` is 1 MiB, anything else is "hello". Usage:
 * `node bench/servers/upstream.ts PORT`.
 */
import http from 'node:http';

const port = Number(process.argv[2]);
const HELLO = Buffer.from('hello');
const BIG = Buffer.alloc(1024 * 1024, 'x');

const server = http.createServer((req, res) => {
  const body = req.url === '/1mib' ? BIG : HELLO;
  // Drain any request body so the connection stays reusable.
  req.resume();
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
});
// Longer than every proxy's pool idle timeout, so no proxy races a closing socket.
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));

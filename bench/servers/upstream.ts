/**
 * The upstream every proxy forwards to: node:http, keep-alive, answers built
 * once. `/1mib` is 1 MiB, `/json64k` 64 KiB of JSON (the compression
 * scenarios), anything else is "hello"; a request body (the uploads
 * scenario) is read whole and discarded before the answer. Usage:
 * `node bench/servers/upstream.ts PORT`.
 */
import http from 'node:http';

const port = Number(process.argv[2]);
const HELLO = Buffer.from('hello');
const BIG = Buffer.alloc(1024 * 1024, 'x');
const JSON_64K = jsonBody(64 * 1024);

/** An API-like JSON array of exactly `size` bytes: records of ids, names, numbers and flags, padded with spaces. */
function jsonBody(size: number): Buffer {
  const items: string[] = [];
  let length = 2;
  for (let i = 0; ; i++) {
    const item = JSON.stringify({ id: 100_000 + i, name: `customer ${(i * 7919) % 1000}`, plan: ['free', 'team', 'enterprise'][i % 3], balance: ((i * 104_729) % 1_000_000) / 100, active: i % 5 !== 0, tags: [`t${i % 11}`, `r${i % 17}`] });
    if (length + item.length + 1 > size) break;
    items.push(item);
    length += item.length + 1;
  }
  return Buffer.from(`[${items.join(',')}]`.padEnd(size, ' '));
}

const server = http.createServer((req, res) => {
  const json = req.url === '/json64k';
  const body = json ? JSON_64K : req.url === '/1mib' ? BIG : HELLO;
  const answer = () => {
    res.writeHead(200, { 'content-type': json ? 'application/json' : 'text/plain', 'content-length': body.length });
    res.end(body);
  };
  // A request with a body (uploads) is read to its end and discarded, then answered, as an
  // app that takes an upload does: an answer before the body is in leaves the proxy
  // to deal with the unread rest, which is not what the uploads scenario measures.
  req.resume();
  if (req.method === 'GET' || req.method === 'HEAD') answer();
  else req.once('end', answer);
});
// Longer than every proxy's pool idle timeout, so no proxy races a closing socket.
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));

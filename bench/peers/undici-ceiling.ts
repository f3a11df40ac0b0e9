/**
 * The Node ceiling: the least a Node reverse proxy can do. node:http in front,
 * one undici Pool (keep-alive) behind, `pool.stream` writing straight into the
 * response. No routing, no logging, no policies: what is left is the cost of
 * being an HTTP server and an HTTP client at once.
 * Usage: `node bench/peers/undici-ceiling.ts LISTEN_PORT UPSTREAM_PORT`.
 */
import http from 'node:http';
import { Pool } from 'undici';

const [listenPort, upstreamPort] = process.argv.slice(2).map(Number);
const pool = new Pool(`http://127.0.0.1:${upstreamPort}`, { connections: 128, keepAliveTimeout: 4_000 });

// Hop-by-hop headers (RFC 9110 7.6.1) are never forwarded; undici rejects some of them anyway.
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

function forwardable(headers: http.IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value !== undefined && !HOP.has(name)) out[name] = value;
  }
  return out;
}

const server = http.createServer((req, res) => {
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  pool.stream(
    {
      path: req.url ?? '/',
      method: req.method as 'GET',
      headers: forwardable(req.headers),
      body: hasBody ? req : null,
      opaque: res,
    },
    ({ statusCode, headers, opaque }) => {
      const out = opaque as http.ServerResponse;
      out.writeHead(statusCode, forwardable(headers));
      return out;
    },
    (err) => {
      if (err && !res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end('bad gateway');
      } else if (err) {
        res.destroy();
      }
    },
  );
});
server.keepAliveTimeout = 65_000;
server.listen(listenPort, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));

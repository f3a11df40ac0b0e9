/**
 * Peer: http-proxy (node-http-proxy) behind node:http, with a keep-alive agent
 * (without one it opens a connection per request and would be an unfair strawman).
 * Usage: `node bench/peers/http-proxy.ts LISTEN_PORT UPSTREAM_PORT`.
 */
import http from 'node:http';
import httpProxy from 'http-proxy';

const [listenPort, upstreamPort] = process.argv.slice(2).map(Number);
const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });
const proxy = httpProxy.createProxyServer({ target: `http://127.0.0.1:${upstreamPort}`, agent });

const server = http.createServer((req, res) => {
  proxy.web(req, res, {}, () => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end('bad gateway');
  });
});
server.keepAliveTimeout = 65_000;
server.listen(listenPort, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));

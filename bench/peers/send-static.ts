/**
 * Peer for static files: the `send` module behind node:http (what express.static
 * uses), serving ROOT at `/`. Usage: `node bench/peers/send-static.ts LISTEN_PORT ROOT`.
 */
import http from 'node:http';
import send from 'send';

const listenPort = Number(process.argv[2]);
const root = process.argv[3];

const server = http.createServer((req, res) => {
  const url = req.url ?? '/';
  const query = url.indexOf('?');
  send(req, query >= 0 ? url.slice(0, query) : url, { root })
    .on('error', (err: { status?: number }) => {
      res.statusCode = err.status ?? 500;
      res.end();
    })
    .pipe(res);
});
server.keepAliveTimeout = 65_000;
server.listen(listenPort, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));

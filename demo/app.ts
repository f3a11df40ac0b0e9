/**
 * The bundled demo app that `npm start` runs behind the sidecar: a tiny
 * node:http service with a JSON endpoint, a health check, a server-sent
 * events stream and an echo of what it received (to show the headers the
 * sidecar adds).
 */
import { createServer } from 'node:http';

const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? '127.0.0.1';

const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    return;
  }
  if (path === '/events') {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    let n = 0;
    const timer = setInterval(() => {
      res.write(`data: tick ${++n}\n\n`);
      if (n === 5) {
        clearInterval(timer);
        res.end();
      }
    }, 500);
    req.on('close', () => clearInterval(timer));
    return;
  }
  if (path === '/echo') {
    const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers }, null, 2);
    res.writeHead(200, { 'content-type': 'application/json' }).end(`${body}\n`);
    return;
  }
  const body = JSON.stringify({
    hello: 'from the demo app behind the sidecar',
    try: ['/echo (the headers the sidecar adds)', '/events (server-sent events)', '/static/ (served by the sidecar itself)'],
  }, null, 2);
  res.writeHead(200, { 'content-type': 'application/json' }).end(`${body}\n`);
});

server.listen(port, host, () => {
  process.stdout.write(`demo app listening on http://${host}:${port}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => server.close(() => process.exit(0)));
}

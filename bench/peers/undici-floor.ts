/**
 * The floor of a node:http + undici proxy: `pool.dispatch` with the smallest
 * handler that relays a response, headers passed through as undici parsed
 * them (hop-by-hop ones dropped, as any proxy must). No stream, no promise,
 * no per-request object beyond the handler. It is not a peer users would
 * pick; it shows how much CPU per request the stack itself costs, so a
 * target that asks for fewer microseconds than this can be recognised as
 * out of reach for any proxy built on node:http and undici.
 * Usage: `node bench/peers/undici-floor.ts LISTEN_PORT UPSTREAM_PORT`.
 */
import http from 'node:http';
import { Pool, type Dispatcher } from 'undici';

const [listenPort, upstreamPort] = process.argv.slice(2).map(Number);
const origin = `http://127.0.0.1:${upstreamPort}`;
const pool = new Pool(origin, { connections: 128, keepAliveTimeout: 4_000 });

// Hop-by-hop headers (RFC 9110 7.6.1) are never forwarded.
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

/** The request's raw [name, value, ...] list without hop-by-hop headers. */
function requestHeaders(raw: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (!HOP.has(raw[i].toLowerCase())) out.push(raw[i], raw[i + 1]);
  return out;
}

class Relay implements Dispatcher.DispatchHandler {
  readonly res: http.ServerResponse;
  constructor(res: http.ServerResponse) {
    this.res = res;
  }
  onRequestStart(): void {}
  onResponseStart(_c: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[] | undefined>): void {
    for (const name of HOP) delete headers[name];
    this.res.writeHead(status, headers);
  }
  onResponseData(_c: Dispatcher.DispatchController, chunk: Buffer): void {
    this.res.write(chunk);
  }
  onResponseEnd(): void {
    this.res.end();
  }
  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    if (this.res.headersSent) this.res.destroy(err);
    else this.res.writeHead(502, { 'content-type': 'text/plain' }).end('bad gateway');
  }
}

const server = http.createServer((req, res) => {
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  pool.dispatch(
    { origin, path: req.url ?? '/', method: req.method as Dispatcher.HttpMethod, headers: requestHeaders(req.rawHeaders), body: hasBody ? req : null },
    new Relay(res),
  );
});
server.keepAliveTimeout = 65_000;
server.listen(listenPort, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));

/**
 * A route restricted by `path`, `pathRegex`, `methods` or `headers` cannot be
 * judged on a blind tunnel (nothing in it is seen), so it never authorises
 * one. Before, silence after `200 Connection Established` (or a first byte
 * that is not a method letter, such as the CR of an empty line) made the
 * CONNECT a blind tunnel, and `findRoute` with method CONNECT and path `/`
 * let such routes open it: `path: /`, `pathRegex: ^/`, `methods: [CONNECT]`,
 * and headers the client itself sent on the CONNECT. Empty lines before a
 * request line (RFC 9112 2.2) no longer hide the HTTP behind them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoServer, type TestServer } from './helpers/servers.ts';
import { startTcpServer } from './helpers/raw.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { closedWithin, openConnect, readAll } from './helpers/egress.ts';

/** A TCP server that counts its connections and echoes what it gets. */
async function countingServer() {
  let connections = 0;
  const server = await startTcpServer((socket) => {
    connections++;
    socket.pipe(socket);
  });
  return { ...server, connections: () => connections };
}

describe('blind tunnels need a route that looks at nothing a tunnel hides', () => {
  const RESTRICTED = [
    { name: 'by-path', match: 'path: /' },
    { name: 'by-path-regex', match: 'pathRegex: "^/"' },
    { name: 'by-methods', match: 'methods: [CONNECT, GET]' },
    { name: 'by-headers', match: 'headers: { x-tenant: acme }' },
  ];
  let servers: Array<Awaited<ReturnType<typeof countingServer>>>;
  let open: Awaited<ReturnType<typeof countingServer>>;
  let echo: TestServer;
  let sidecar: RunningSidecar;
  let proxy: number;

  beforeAll(async () => {
    servers = await Promise.all(RESTRICTED.map(() => countingServer()));
    open = await countingServer();
    echo = await echoServer();
    const routes = RESTRICTED.map((route, i) => `    - { name: ${route.name}, match: { host: 127.0.0.1, ports: [${servers[i].port}], ${route.match} } }`);
    sidecar = await startSidecar(`${TEST_BASE}
egress:
  listen: 127.0.0.1:0
  routes:
${routes.join('\n')}
    - { name: public-only, match: { host: 127.0.0.1, ports: [${echo.port}], path: /public/ } }
    - { name: open, match: { host: 127.0.0.1, ports: [${open.port}] } }
`);
    proxy = sidecar.egressPort!;
  });
  afterAll(async () => {
    await sidecar.close();
    for (const server of [...servers, open]) await server.close();
    await echo.close();
  });

  it('closes a silent CONNECT on a route with path, pathRegex, methods or headers, without connecting', async () => {
    for (const [i, route] of RESTRICTED.entries()) {
      const tunnel = await openConnect(proxy, `127.0.0.1:${servers[i].port}`, { 'x-tenant': 'acme' });
      expect(tunnel.status, route.name).toBe(200); // HTTP inside would be judged request by request
      // Silence: after the peek wait (500 ms) the CONNECT would become a blind tunnel.
      expect(await closedWithin(tunnel.socket, 3_000), route.name).toBe(true);
      expect(servers[i].connections(), route.name).toBe(0);
    }
  });

  it('closes a CONNECT on such a route whose first bytes are not HTTP (an empty line, then TLS)', async () => {
    for (const [i, route] of RESTRICTED.entries()) {
      const tunnel = await openConnect(proxy, `127.0.0.1:${servers[i].port}`, { 'x-tenant': 'acme' });
      tunnel.socket.write(Buffer.from([0x0d, 0x0a, 0x16, 0x03, 0x01, 0x00, 0x05]));
      expect(await closedWithin(tunnel.socket, 3_000), route.name).toBe(true);
      expect(servers[i].connections(), route.name).toBe(0);
    }
  });

  it('sees the HTTP request behind leading empty lines, and routes it (a path no route allows is 403)', async () => {
    const denied = await openConnect(proxy, `127.0.0.1:${echo.port}`);
    denied.socket.write('\r\n\r\nGET /secret HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const refusal = await readAll(denied.socket);
    expect(refusal).toMatch(/^HTTP\/1\.1 403 /);
    expect(refusal).toMatch(/x-sidecar-error: destination_denied/);

    const allowed = await openConnect(proxy, `127.0.0.1:${echo.port}`);
    allowed.socket.write('\r\nGET /public/page HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const answer = await readAll(allowed.socket);
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).toMatch(/"url":"\/public\/page"/);
  });

  it('still opens a blind tunnel on a route without those keys, silent client included', async () => {
    const tunnel = await openConnect(proxy, `127.0.0.1:${open.port}`);
    expect(await closedWithin(tunnel.socket, 1_000)).toBe(false); // past the peek wait, still open
    const echoed = new Promise<string>((resolve) => tunnel.socket.once('data', (chunk: Buffer) => resolve(chunk.toString('latin1'))));
    tunnel.socket.write('ping');
    expect(await echoed).toBe('ping');
    expect(open.connections()).toBe(1);
    tunnel.socket.destroy();
  });
});

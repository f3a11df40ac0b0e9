/**
 * CONNECT: the allow-list (403), malformed targets (400), blind tunnels (TLS
 * and other protocols) with half-close, idle timeout and byte counts, and HTTP
 * carried inside a tunnel, which is routed request by request like
 * absolute-form. Tunnels are tracked: a drain lets them finish and cuts them
 * at the deadline; a reload does not cut them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import type { Socket } from 'node:net';
import { request } from 'undici';
import { echoServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { rawExchange, startTcpServer } from './helpers/raw.ts';
import { makeTestPki, startHttpsServer, type TestHttpsServer, type TestPki } from './helpers/tls.ts';
import { openConnect, readAll } from './helpers/egress.ts';

/** A TCP server that speaks no HTTP: it answers `got N bytes` once the client half-closes, then ends. */
async function halfCloseServer() {
  return startTcpServer((socket) => {
    let bytes = 0;
    socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
    socket.on('end', () => socket.end(`got ${bytes} bytes`));
  });
}

/** 24 MiB of random bytes, sent to every connection as fast as it takes them, then a FIN. */
const BULK = randomBytes(24 * 1024 * 1024);
async function bulkServer() {
  return startTcpServer((socket) => {
    socket.on('error', () => socket.destroy());
    socket.end(BULK);
  });
}

/** Writes a request on a tunnel and reads one response (content-length or chunked body). */
function httpOnTunnel(socket: Socket, text: string): Promise<{ status: number; head: string; body: string }> {
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = received.subarray(0, end).toString('latin1');
      const rest = received.subarray(end + 4).toString('latin1');
      let body: string;
      if (/transfer-encoding: chunked/i.test(head)) {
        if (!rest.endsWith('0\r\n\r\n')) return;
        body = '';
        for (let at = 0; ; ) {
          const size = parseInt(rest.slice(at, rest.indexOf('\r\n', at)), 16);
          if (!size) break;
          const start = rest.indexOf('\r\n', at) + 2;
          body += rest.slice(start, start + size);
          at = start + size + 2;
        }
      } else {
        const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (rest.length < length) return;
        body = rest.slice(0, length);
      }
      socket.off('data', onData);
      resolve({ status: Number(head.slice(9, 12)), head, body: Buffer.from(body, 'latin1').toString('utf8') });
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.resume();
    socket.write(text);
  });
}

async function metricValue(sidecar: RunningSidecar, name: string, labels: string): Promise<number> {
  const text = await (await request(sidecar.admin('/metrics'))).body.text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('egress CONNECT', () => {
  let pki: TestPki;
  let tls: TestHttpsServer;
  let echo: TestServer;
  let opaque: Awaited<ReturnType<typeof halfCloseServer>>;
  let bulk: Awaited<ReturnType<typeof bulkServer>>;
  let sidecar: RunningSidecar;
  let proxy: number;

  beforeAll(async () => {
    pki = makeTestPki();
    tls = await startHttpsServer(pki, (req, res) => res.end(`tls ${req.url} host=${req.headers.host}`));
    echo = await echoServer();
    opaque = await halfCloseServer();
    bulk = await bulkServer();
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  payments: { endpoints: [${echo.url}] }
  secure: { endpoints: ["https://localhost:${tls.port}"] }
egress:
  listen: 127.0.0.1:0
  tunnelIdleTimeout: 300ms
  routes:
    - { name: payments, match: { host: payments.internal }, upstream: payments }
    - { name: secure, match: { host: secure.test, ports: [443] }, upstream: secure }
    - { name: reports-only, match: { host: reports.internal, path: /reports/ }, upstream: payments }
    - { name: local, match: { host: localhost, ports: [${tls.port}, ${echo.port}, ${opaque.port}] } }
    - { name: loopback, match: { host: 127.0.0.1, ports: [${echo.port}, ${opaque.port}, ${bulk.port}] } }
`);
    proxy = sidecar.egressPort!;
  });
  afterAll(async () => {
    await sidecar.close();
    await tls.close();
    await echo.close();
    await opaque.close();
    await bulk.close();
    pki.remove();
  });

  it('answers 403 destination_denied for a CONNECT no route allows (host or port)', async () => {
    // Port 80 is accepted and each request inside answered 403 (hardening-egress-fetch-denied.test.ts).
    for (const target of ['example.org:443', 'localhost:1', 'payments.internal.evil:443']) {
      const tunnel = await openConnect(proxy, target);
      expect(tunnel.status, target).toBe(403);
      expect(tunnel.response).toMatch(/x-sidecar-error: destination_denied/);
      expect(tunnel.response).toMatch(/"error":"destination_denied"/);
    }
  });

  it('answers 400 bad_request for a malformed CONNECT target', async () => {
    for (const target of ['payments.internal', '/charge', 'payments.internal:99999', 'payments.internal:0', '[::1:80', 'user@payments.internal:80', 'http://payments.internal:80']) {
      const answer = await rawExchange(proxy, `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
      expect(answer, target).toMatch(/^HTTP\/1\.1 400 /);
      expect(answer, target).toMatch(/x-sidecar-error: bad_request/);
    }
  });

  it('tunnels TLS blindly to a pass-through destination (test CA made in the test)', async () => {
    const tunnel = await openConnect(proxy, `localhost:${tls.port}`);
    expect(tunnel.status).toBe(200);
    expect(tunnel.response).toMatch(/^HTTP\/1\.1 200 Connection Established/);
    const secure = tlsConnect({ socket: tunnel.socket, servername: 'localhost', ca: pki.ca });
    await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
    secure.write('GET /over-tls HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    const answer = await readAll(secure as unknown as Socket);
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    expect(answer).toMatch(/tls \/over-tls host=localhost/);
  });

  it('tunnels TLS for a logical name to the endpoint of its upstream', async () => {
    const tunnel = await openConnect(proxy, 'secure.test:443');
    expect(tunnel.status).toBe(200);
    const secure = tlsConnect({ socket: tunnel.socket, servername: 'secure.test', ca: pki.ca });
    await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
    secure.write('GET /named HTTP/1.1\r\nHost: secure.test\r\nConnection: close\r\n\r\n');
    expect(await readAll(secure as unknown as Socket)).toMatch(/tls \/named host=secure\.test/);
  });

  it('passes a half-close on: the client ends its side and still reads the answer', async () => {
    const tunnel = await openConnect(proxy, `127.0.0.1:${opaque.port}`);
    expect(tunnel.status).toBe(200);
    const answer = readAll(tunnel.socket);
    tunnel.socket.write(Buffer.from([0x00, 0x01, 0x02, 0x03]));
    tunnel.socket.end('hello');
    expect(await answer).toBe('got 9 bytes');
  });

  it('delivers a bulk download intact to a client that reads slowly, then passes the FIN on', async () => {
    // The download direction reuses one read buffer per tunnel: a slow reader makes
    // writes pend, and no byte may be overwritten while one does.
    const tunnel = await openConnect(proxy, `127.0.0.1:${bulk.port}`);
    expect(tunnel.status).toBe(200);
    const hash = createHash('sha256');
    let received = 0;
    const ended = new Promise<void>((resolve, reject) => {
      tunnel.socket.on('end', resolve);
      tunnel.socket.on('error', reject);
    });
    let pauses = 0;
    tunnel.socket.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      const before = received;
      received += chunk.length;
      // Stall for 20 ms after every 2 MiB (at most 12 times), so the sidecar's writes to us back up.
      if (Math.floor(received / (2 * 1024 * 1024)) > Math.floor(before / (2 * 1024 * 1024)) && pauses < 12) {
        pauses++;
        tunnel.socket.pause();
        setTimeout(() => tunnel.socket.resume(), 20);
      }
    });
    tunnel.socket.resume(); // openConnect leaves the socket paused after the CONNECT answer
    await ended;
    expect(received).toBe(BULK.length);
    expect(hash.digest('hex')).toBe(createHash('sha256').update(BULK).digest('hex'));
    expect(pauses).toBeGreaterThan(0);
  });

  it('counts tunnel bytes in sidecar_tunnel_bytes_total', async () => {
    const upBefore = await metricValue(sidecar, 'sidecar_tunnel_bytes_total', 'direction="up"');
    const downBefore = await metricValue(sidecar, 'sidecar_tunnel_bytes_total', 'direction="down"');
    const tunnel = await openConnect(proxy, `127.0.0.1:${opaque.port}`);
    const answer = readAll(tunnel.socket);
    tunnel.socket.end(Buffer.alloc(1000, 0x01));
    expect(await answer).toBe('got 1000 bytes');
    expect((await metricValue(sidecar, 'sidecar_tunnel_bytes_total', 'direction="up"')) - upBefore).toBe(1000);
    expect((await metricValue(sidecar, 'sidecar_tunnel_bytes_total', 'direction="down"')) - downBefore).toBe('got 1000 bytes'.length);
  });

  it('closes a tunnel idle for tunnelIdleTimeout', async () => {
    const tunnel = await openConnect(proxy, `127.0.0.1:${opaque.port}`);
    tunnel.socket.write(Buffer.from([0x01]));
    // Nothing more is sent either way: the sidecar closes the tunnel (readAll resolves on close, or after 5s with what it has).
    const closed = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 5_000);
      tunnel.socket.once('close', () => {
        clearTimeout(timer);
        resolve(true);
      });
      tunnel.socket.resume();
    });
    expect(await closed).toBe(true);
  });

  it('keeps a tunnel open while bytes keep coming, each pause shorter than tunnelIdleTimeout', async () => {
    const tunnel = await openConnect(proxy, `127.0.0.1:${opaque.port}`);
    const answer = readAll(tunnel.socket);
    // 8 bytes 100 ms apart: 800 ms in all, well past the 300 ms idle limit, never 300 ms quiet.
    for (let i = 0; i < 8; i++) {
      tunnel.socket.write(Buffer.from([0x01]));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    tunnel.socket.end();
    expect(await answer).toBe('got 8 bytes');
  });

  it('routes HTTP carried inside a CONNECT like absolute-form: a logical name reaches its upstream, request after request', async () => {
    const tunnel = await openConnect(proxy, 'payments.internal:80');
    expect(tunnel.status).toBe(200);
    for (const path of ['/first', '/second?x=1']) {
      const answer = await httpOnTunnel(tunnel.socket, `GET ${path} HTTP/1.1\r\nHost: payments.internal\r\n\r\n`);
      expect(answer.status).toBe(200);
      const seen = JSON.parse(answer.body);
      expect(seen.url).toBe(path);
      expect(seen.headers.host).toBe(`127.0.0.1:${echo.port}`);
      expect(seen.headers['x-forwarded-host']).toBe('payments.internal');
      expect(seen.headers.via).toMatch(/sidecar-/);
      expect(answer.head).toMatch(/x-request-id: /);
    }
    tunnel.socket.destroy();
  });

  it('checks every request inside a tunnel against the routes (a path no route allows is 403)', async () => {
    const tunnel = await openConnect(proxy, 'reports.internal:80');
    expect(tunnel.status).toBe(200);
    const allowed = await httpOnTunnel(tunnel.socket, 'GET /reports/q1 HTTP/1.1\r\nHost: reports.internal\r\n\r\n');
    expect(allowed.status).toBe(200);
    const denied = await httpOnTunnel(tunnel.socket, 'GET /admin HTTP/1.1\r\nHost: reports.internal\r\n\r\n');
    expect(denied.status).toBe(403);
    expect(denied.head).toMatch(/x-sidecar-error: destination_denied/);
    tunnel.socket.destroy();
  });

  it('keeps the CONNECT destination even when the request inside names another host', async () => {
    const tunnel = await openConnect(proxy, `127.0.0.1:${echo.port}`);
    const answer = await httpOnTunnel(tunnel.socket, 'GET http://payments.internal/elsewhere HTTP/1.1\r\nHost: payments.internal\r\n\r\n');
    expect(answer.status).toBe(200);
    const seen = JSON.parse(answer.body);
    expect(seen.url).toBe('/elsewhere');
    expect(seen.headers.host).toBe(`127.0.0.1:${echo.port}`);
    expect(seen.headers['x-forwarded-host']).toBeUndefined();
    tunnel.socket.destroy();
  });

  it('refuses a blind tunnel where the routes allow only HTTP (a route with a path)', async () => {
    const tunnel = await openConnect(proxy, 'reports.internal:443');
    expect(tunnel.status).toBe(200);
    tunnel.socket.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05]));
    expect(await readAll(tunnel.socket)).toBe('');
  });
});

describe('tunnels at shutdown and reload', () => {
  let opaque: Awaited<ReturnType<typeof startTcpServer>>;

  beforeAll(async () => {
    // Echoes every chunk back: a tunnel that stays open until the client closes it.
    opaque = await startTcpServer((socket) => socket.pipe(socket));
  });
  afterAll(async () => {
    await opaque.close();
  });

  const config = (routes: string) => `${TEST_BASE}
egress:
  listen: 127.0.0.1:0
  routes:
${routes}
`;

  async function roundTrip(socket: Socket, text: string): Promise<string> {
    return new Promise((resolve) => {
      socket.once('data', (chunk: Buffer) => resolve(chunk.toString('latin1')));
      socket.resume();
      socket.write(text);
    });
  }

  it('lets an open tunnel work during the drain and cuts it at the deadline', async () => {
    const sidecar = await startSidecar(config(`    - { match: { host: 127.0.0.1, ports: [${opaque.port}] } }`));
    const tunnel = await openConnect(sidecar.egressPort!, `127.0.0.1:${opaque.port}`);
    expect(await roundTrip(tunnel.socket, 'ping-1')).toBe('ping-1');
    let stopped = false;
    const stopping = sidecar.sidecar.stop(1_500).then(() => (stopped = true));
    expect(await roundTrip(tunnel.socket, 'ping-2')).toBe('ping-2');
    expect(stopped).toBe(false);
    const closed = new Promise<void>((resolve) => tunnel.socket.once('close', () => resolve()));
    await stopping;
    await closed;
    await sidecar.close();
  });

  it('finishes the drain as soon as the last tunnel closes', async () => {
    const sidecar = await startSidecar(config(`    - { match: { host: 127.0.0.1, ports: [${opaque.port}] } }`));
    const tunnel = await openConnect(sidecar.egressPort!, `127.0.0.1:${opaque.port}`);
    expect(await roundTrip(tunnel.socket, 'x')).toBe('x');
    const stopping = sidecar.sidecar.stop(60_000);
    tunnel.socket.end();
    await stopping; // long before the deadline, or the test times out
    await sidecar.close();
  });

  it('closes an idle keep-alive HTTP connection inside a tunnel at once when draining', async () => {
    const echo = await echoServer();
    const sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  payments: { endpoints: [${echo.url}] }
egress:
  listen: 127.0.0.1:0
  routes:
    - { match: { host: payments.internal }, upstream: payments }
`);
    const tunnel = await openConnect(sidecar.egressPort!, 'payments.internal:80');
    expect((await httpOnTunnel(tunnel.socket, 'GET /one HTTP/1.1\r\nHost: payments.internal\r\n\r\n')).status).toBe(200);
    const closed = new Promise<void>((resolve) => tunnel.socket.once('close', () => resolve()));
    await sidecar.sidecar.stop(60_000); // long before the deadline, or the test times out
    await closed;
    await sidecar.close();
    await echo.close();
  });

  it('keeps a tunnel open across a reload that removes its route; new CONNECTs see the new routes', async () => {
    const sidecar = await startSidecar(config(`    - { match: { host: 127.0.0.1, ports: [${opaque.port}] } }`));
    const tunnel = await openConnect(sidecar.egressPort!, `127.0.0.1:${opaque.port}`);
    expect(await roundTrip(tunnel.socket, 'before')).toBe('before');
    writeFileSync(sidecar.file, config('    - { match: { host: nothing.internal } }'));
    const reloaded = await request(sidecar.admin('/reload'), { method: 'POST' });
    expect(reloaded.statusCode, await reloaded.body.text()).toBe(200);
    expect(await roundTrip(tunnel.socket, 'after')).toBe('after');
    expect((await openConnect(sidecar.egressPort!, `127.0.0.1:${opaque.port}`)).status).toBe(403);
    tunnel.socket.destroy();
    await sidecar.close();
  });
});

/**
 * Squid's `to_localhost` rule: a `*` or `*.suffix` pass-through route does
 * not reach loopback, unspecified, link-local or this host's own addresses
 * unless it sets `allowLoopback: true` (loopback; the sidecar's own listeners
 * stay a loop) or `allowPrivate: true` (link-local, cloud metadata). A route
 * that names the host exactly reaches loopback; cloud metadata addresses need
 * `allowPrivate` on every route. RFC 1918 / ULA stay reachable. The checks
 * run on resolved addresses for absolute-form, origin-form, HTTP inside a
 * CONNECT and blind CONNECT alike. End to end on loopback only; the rules for
 * addresses off this host are checked without sending a packet.
 */
import { networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compile } from '../src/config/compile.ts';
import { configSchema } from '../src/config/schema.ts';
import { addressProblem, rulesFor, type OwnAddress } from '../src/egress/policy.ts';
import { echoServer, type TestServer } from './helpers/servers.ts';
import { startTcpServer } from './helpers/raw.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { openConnect, proxiedRequest, readAll } from './helpers/egress.ts';

describe('a * route does not reach loopback', () => {
  let echo: TestServer;
  let opaque: Awaited<ReturnType<typeof startTcpServer>>;
  let connections = 0;
  let sidecar: RunningSidecar;
  let proxy: number;

  beforeAll(async () => {
    echo = await echoServer();
    opaque = await startTcpServer((socket) => {
      connections++;
      socket.pipe(socket);
    });
    sidecar = await startSidecar(`${TEST_BASE}
egress:
  listen: 127.0.0.1:0
  routes:
    - { name: inner-wild, match: { host: "*", ports: [${echo.port}], path: /inner/ } }
    - { name: named-ok, match: { host: 127.0.0.1, ports: [${echo.port}], path: /ok/ } }
    - { name: wild, match: { host: "*", ports: [${echo.port}] } }
    - { name: named-http-only, match: { host: 127.0.0.1, ports: [${opaque.port}], path: / } }
    - { name: wild-blind, match: { host: "*", ports: [${opaque.port}] } }
`);
    proxy = sidecar.egressPort!;
  });
  afterAll(async () => {
    await sidecar.close();
    await echo.close();
    await opaque.close();
  });

  function expectRefused(answer: { status: number; body: string; headers: Record<string, unknown> }, label: string): void {
    expect(answer.status, label).toBe(403);
    expect(answer.headers['x-sidecar-error'], label).toBe('destination_denied');
    expect(JSON.parse(answer.body).message, label).toMatch(/loopback/);
  }

  it('refuses loopback in absolute-form, by literal and by a name that resolves there', async () => {
    for (const host of ['127.0.0.1', '127.0.0.2', 'localhost', '0.0.0.0', '[::ffff:127.0.0.1]']) {
      expectRefused(await proxiedRequest(proxy, `http://${host}:${echo.port}/x`), host);
    }
  });

  it('refuses loopback in origin-form (Host names the destination)', async () => {
    expectRefused(await proxiedRequest(proxy, '/x', { headers: { host: `127.0.0.1:${echo.port}` } }), 'origin-form');
  });

  it('refuses a CONNECT to loopback that only a * route allows', async () => {
    const tunnel = await openConnect(proxy, `localhost:${echo.port}`);
    expect(tunnel.status).toBe(403);
    expect(tunnel.response).toMatch(/x-sidecar-error: destination_denied/);
    expect(tunnel.response).toMatch(/loopback/);
  });

  it('judges each request inside a CONNECT by its own route: a * route refuses, a route naming the host allows', async () => {
    const tunnel = await openConnect(proxy, `127.0.0.1:${echo.port}`);
    expect(tunnel.status).toBe(200); // named-ok allows the destination
    tunnel.socket.write(`GET /inner/x HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\n\r\nGET /ok/y HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\nConnection: close\r\n\r\n`);
    const answers = await readAll(tunnel.socket);
    expect(answers).toMatch(/^HTTP\/1\.1 403 [^]*loopback[^]*HTTP\/1\.1 200 [^]*"url":"\/ok\/y"/);
  });

  it('refuses a blind tunnel to loopback when the route for blind tunnels is a * route', async () => {
    const tunnel = await openConnect(proxy, `127.0.0.1:${opaque.port}`);
    expect(tunnel.status).toBe(200); // named-http-only lets HTTP in
    tunnel.socket.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05]));
    expect(await readAll(tunnel.socket)).toBe('');
    expect(connections).toBe(0);
  });
});

describe('allowLoopback and allowPrivate', () => {
  let echo: TestServer;
  let sidecar: RunningSidecar;
  let proxy: number;

  beforeAll(async () => {
    echo = await echoServer();
    sidecar = await startSidecar(`${TEST_BASE}
ingress:
  listen: 127.0.0.1:0
  routes: []
egress:
  listen: 127.0.0.1:0
  routes:
    - { name: anywhere-local, match: { host: "*" }, allowLoopback: true }
`);
    proxy = sidecar.egressPort!;
  });
  afterAll(async () => {
    await sidecar.close();
    await echo.close();
  });

  it('allowLoopback: true reaches loopback (absolute-form, by name, and blind CONNECT)', async () => {
    for (const host of ['127.0.0.1', 'localhost']) {
      const response = await proxiedRequest(proxy, `http://${host}:${echo.port}/x`);
      expect(response.status, host).toBe(200);
    }
    expect((await openConnect(proxy, `127.0.0.1:${echo.port}`)).status).toBe(200);
  });

  it("allowLoopback: true still refuses the sidecar's own listeners (a loop)", async () => {
    for (const port of [proxy, sidecar.sidecar.ingressPort!, sidecar.sidecar.adminPort!]) {
      const response = await proxiedRequest(proxy, `http://127.0.0.1:${port}/`);
      expect(response.status, String(port)).toBe(403);
      expect(JSON.parse(response.body).message).toMatch(/loop/);
    }
  });

  it('rejects the keys on an ingress route (egress routes only)', async () => {
    const parsed = configSchema.safeParse({ ingress: { routes: [{ match: { path: '/' }, upstream: 'a', allowLoopback: true }] } });
    expect(parsed.success).toBe(false);
  });
});

describe('the address rules, without a packet sent', () => {
  const own: OwnAddress[] = [{ address: '127.0.0.1', port: 15001 }];
  type Rules = ReturnType<typeof rulesFor>;
  /** The compiled rules of egress routes, as the dispatcher and CONNECT take them. */
  function rules(route: Record<string, unknown>): Rules {
    const snapshot = compile({ config: configSchema.parse({ egress: { routes: [route] } }), hash: '', source: '', loadedAt: new Date() });
    return rulesFor(snapshot.egress!.routes[0], () => own);
  }
  let wild: Rules, suffix: Rules, anyHost: Rules, named: Rules, loopback: Rules, privateToo: Rules, namedPrivate: Rules;
  beforeAll(() => {
    wild = rules({ match: { host: '*' } });
    suffix = rules({ match: { host: '*.svc.internal' } });
    anyHost = rules({ match: { ports: [80] } });
    named = rules({ match: { host: 'api.example.com' } });
    loopback = rules({ match: { host: '*' }, allowLoopback: true });
    privateToo = rules({ match: { host: '*' }, allowPrivate: true });
    namedPrivate = rules({ match: { host: 'metadata.google.internal' }, allowPrivate: true });
  });

  const METADATA = ['169.254.169.254', 'fd00:ec2::254', '100.100.100.200', '169.254.170.2', 'fd20:ce::254', '::ffff:169.254.169.254', '64:ff9b::a9fe:a9fe'];
  const LINK_LOCAL = ['169.254.0.1', 'fe80::1'];
  const LOOPBACK = ['127.0.0.1', '127.9.9.9', '::1', '0.0.0.0', '::', '::ffff:127.0.0.1', '0:0::1', '::7f00:1'];
  const REACHABLE = ['10.1.2.3', '172.16.0.1', '192.168.1.1', 'fd12:3456::1', '100.64.0.1', '93.184.216.34', '2001:db8::1'];

  it('a * or *.suffix route (or one without host) refuses loopback, link-local and metadata', () => {
    for (const route of [wild, suffix, anyHost]) {
      for (const address of LOOPBACK) expect(addressProblem(address, 80, route), address).toMatch(/loopback/);
      for (const address of LINK_LOCAL) expect(addressProblem(address, 80, route), address).toMatch(/link-local/);
      for (const address of METADATA) expect(addressProblem(address, 80, route), address).toMatch(/metadata/);
    }
  });

  it("a * route also refuses this host's own interface addresses", () => {
    const mine = Object.values(networkInterfaces()).flatMap((entries) => entries ?? []).filter((entry) => !entry.internal && !entry.address.startsWith('fe80'));
    for (const entry of mine) expect(addressProblem(entry.address, 80, wild), entry.address).toMatch(/loopback|this host/);
    for (const entry of mine) expect(addressProblem(entry.address, 80, loopback), entry.address).toBeUndefined();
  });

  it('RFC 1918, ULA, CGNAT and public addresses stay reachable through a * route', () => {
    for (const address of REACHABLE) expect(addressProblem(address, 80, wild), address).toBeUndefined();
  });

  it('a route naming the host exactly reaches loopback and link-local, but not metadata nor the unspecified address', () => {
    const unspecified = ['0.0.0.0', '::'];
    for (const address of [...LOOPBACK.filter((a) => !unspecified.includes(a)), ...LINK_LOCAL]) expect(addressProblem(address, 80, named), address).toBeUndefined();
    for (const address of METADATA) expect(addressProblem(address, 80, named), address).toMatch(/metadata/);
    // A DNS sinkhole answers 0.0.0.0 for a blocked name: that is not the host the operator named.
    for (const address of unspecified) expect(addressProblem(address, 80, named), address).toMatch(/unspecified/);
  });

  it('allowLoopback opens loopback only; allowPrivate opens link-local and metadata only', () => {
    for (const address of LOOPBACK) expect(addressProblem(address, 80, loopback), address).toBeUndefined();
    for (const address of [...LINK_LOCAL, ...METADATA]) expect(addressProblem(address, 80, loopback), address).toBeDefined();
    for (const address of [...LINK_LOCAL, ...METADATA]) expect(addressProblem(address, 80, privateToo), address).toBeUndefined();
    for (const address of LOOPBACK) expect(addressProblem(address, 80, privateToo), address).toMatch(/loopback/);
    for (const address of METADATA) expect(addressProblem(address, 80, namedPrivate), address).toBeUndefined();
  });

  it('the own listeners stay a loop for every route', () => {
    for (const route of [named, loopback, privateToo]) expect(addressProblem('127.0.0.1', 15001, route)).toMatch(/loop/);
  });
});

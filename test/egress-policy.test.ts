/**
 * Not an open proxy, even with a `*` route (here with `allowLoopback: true`,
 * to reach test servers on 127.0.0.1): requests back into the sidecar (its
 * own listeners, or carrying its own Via) are loops, link-local addresses are
 * refused unless a route names the host exactly, and cloud metadata addresses
 * unless it sets `allowPrivate`.
 * The checks run on resolved addresses, so a name that resolves there is
 * refused too (`localhost` resolves to this host's own listeners without any
 * DNS server, which makes the case testable on loopback only).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addressProblem, type OwnAddress } from '../src/egress/policy.ts';
import { VIA_TOKEN } from '../src/proxy/headers.ts';
import { echoServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { openConnect, proxiedRequest } from './helpers/egress.ts';

describe('egress loop and metadata checks', () => {
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
    - { name: anywhere, match: { host: "*" }, allowLoopback: true }
`);
    proxy = sidecar.egressPort!;
  });
  afterAll(async () => {
    await sidecar.close();
    await echo.close();
  });

  it('still forwards to ordinary loopback destinations', async () => {
    const response = await proxiedRequest(proxy, `http://127.0.0.1:${echo.port}/ok`);
    expect(response.status).toBe(200);
  });

  it('refuses a request aimed at its own egress, ingress or admin port', async () => {
    const ports = [proxy, sidecar.sidecar.ingressPort!, sidecar.sidecar.adminPort!];
    for (const port of ports) {
      const response = await proxiedRequest(proxy, `http://127.0.0.1:${port}/loop`);
      expect(response.status, String(port)).toBe(403);
      expect(response.headers['x-sidecar-error']).toBe('destination_denied');
      expect(JSON.parse(response.body).message).toMatch(/loop/);
    }
  });

  it('refuses a name that resolves to its own listener (checked on the resolved address)', async () => {
    const response = await proxiedRequest(proxy, `http://localhost:${proxy}/loop`);
    expect(response.status).toBe(403);
    expect(JSON.parse(response.body).message).toMatch(/localhost resolves to .*loop/);
  });

  it('refuses 0.0.0.0 and the IPv4-mapped spelling of its own address', async () => {
    for (const host of ['0.0.0.0', '[::ffff:127.0.0.1]']) {
      const response = await proxiedRequest(proxy, `http://${host}:${proxy}/loop`);
      expect(response.status, host).toBe(403);
    }
  });

  it('refuses a request that already carries its own Via (a loop through another hop)', async () => {
    const response = await proxiedRequest(proxy, `http://127.0.0.1:${echo.port}/x`, { headers: { via: `1.1 other, ${VIA_TOKEN}` } });
    expect(response.status).toBe(403);
    expect(JSON.parse(response.body).message).toMatch(/loop/);
    // Another sidecar's Via is not ours: a chain is fine.
    const chained = await proxiedRequest(proxy, `http://127.0.0.1:${echo.port}/x`, { headers: { via: '1.1 sidecar-00000000' } });
    expect(chained.status).toBe(200);
  });

  it('refuses a CONNECT to its own port', async () => {
    const tunnel = await openConnect(proxy, `127.0.0.1:${proxy}`);
    expect(tunnel.status).toBe(403);
    expect(tunnel.response).toMatch(/x-sidecar-error: destination_denied/);
    expect(tunnel.response).toMatch(/loop/);
  });

  it('refuses the metadata address through a * route, absolute-form and CONNECT', async () => {
    for (const target of ['http://169.254.169.254/latest/meta-data/', 'http://[fd00:ec2::254]/latest/', 'http://[::ffff:169.254.169.254]/']) {
      const response = await proxiedRequest(proxy, target);
      expect(response.status, target).toBe(403);
      expect(JSON.parse(response.body).message, target).toMatch(/metadata/);
    }
    const tunnel = await openConnect(proxy, '169.254.169.254:80');
    expect(tunnel.status).toBe(403);
    expect(tunnel.response).toMatch(/metadata/);
  });

  it('refuses a host name that resolves to the metadata address', async () => {
    const tunnel = await openConnect(proxy, '2852039166:80');
    expect(tunnel.status).toBe(403);
    // The numeric name is read as the literal it is (net/address.ts), as a resolver would read it.
    expect(tunnel.response).toMatch(/169\.254\.169\.254 is a cloud metadata address/);
    // Absolute-form: the URL parser turns the number into 169.254.169.254, refused as a literal.
    const response = await proxiedRequest(proxy, 'http://2852039166/');
    expect(response.status).toBe(403);
  });
});

describe('the address rules themselves', () => {
  const own: OwnAddress[] = [
    { address: '127.0.0.1', port: 15001 },
    { address: '0.0.0.0', port: 8080 },
  ];
  const wildcard = { exactHost: false, loopback: false, private: false, own: () => own };
  const named = { exactHost: true, loopback: false, private: false, own: () => own };

  it('allows link-local addresses only for a route that names the host exactly, metadata addresses for none without allowPrivate', () => {
    for (const address of ['169.254.0.1', 'fe80::1']) {
      expect(addressProblem(address, 80, wildcard), address).toMatch(/link-local/);
      expect(addressProblem(address, 80, named), address).toBeUndefined();
    }
    for (const address of ['169.254.169.254', 'fd00:ec2::254', '::ffff:169.254.169.254']) {
      expect(addressProblem(address, 80, wildcard), address).toMatch(/metadata/);
      expect(addressProblem(address, 80, named), address).toMatch(/metadata/);
    }
  });

  it('finds loops on a specific and on a wildcard listener, but not on other ports or other loopback addresses', () => {
    expect(addressProblem('127.0.0.1', 15001, named)).toMatch(/loop/);
    expect(addressProblem('127.0.0.2', 15001, named)).toBeUndefined(); // 127.0.0.1:15001 does not receive it
    expect(addressProblem('127.0.0.2', 8080, named)).toMatch(/loop/); // 0.0.0.0:8080 does
    expect(addressProblem('::1', 8080, named)).toBeUndefined(); // an IPv4 wildcard listener does not take ::1
    expect(addressProblem('127.0.0.1', 15002, named)).toBeUndefined();
    expect(addressProblem('93.184.216.34', 80, wildcard)).toBeUndefined();
  });
});

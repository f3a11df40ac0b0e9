/**
 * A reload that changes `listen`: the new address is bound before the old
 * one stops accepting, requests in flight on the old one finish, and a bind
 * failure fails the reload with the old listener (and config) kept.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { Client, request } from 'undici';
import { closedPort, echoServer, startHttpServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { startTcpServer } from './helpers/raw.ts';
import { reloads, versionAt, waitFor } from './helpers/reload.ts';

let upstream: TestServer;
let held: TestServer;
/** Answers of /hold requests, released by the test. */
const waiting: Array<() => void> = [];
const running: RunningSidecar[] = [];

function version(n: number, listen = '127.0.0.1:0', adminListen = '127.0.0.1:0'): string {
  return `
admin: { listen: ${adminListen} }
log: { level: silent, access: false }
upstreams:
  app: { endpoints: [${upstream.url}] }
  held: { endpoints: [${held.url}] }
ingress:
  listen: ${listen}
  routes:
    - { name: hold, match: { path: /hold }, upstream: held, headers: { response: { add: { x-config-version: "${n}" } } } }
    - { name: app, match: { path: / }, upstream: app, headers: { response: { add: { x-config-version: "${n}" } } } }
`;
}

async function postReload(sidecar: RunningSidecar, adminPort = sidecar.sidecar.adminPort): Promise<{ status: number; body: { hash?: string; errors?: string[] } }> {
  const response = await request(`http://127.0.0.1:${adminPort}/reload`, { method: 'POST' });
  return { status: response.statusCode, body: (await response.body.json()) as { hash?: string; errors?: string[] } };
}

/** True once nothing accepts connections on `port`. */
async function refused(port: number): Promise<true | undefined> {
  try {
    const response = await request(`http://127.0.0.1:${port}/`, { reset: true });
    await response.body.dump();
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code === 'ECONNREFUSED' ? true : undefined;
  }
}

beforeAll(async () => {
  upstream = await echoServer();
  held = await startHttpServer((req, res) => {
    req.resume();
    waiting.push(() => res.end('held'));
  });
});
afterEach(async () => {
  for (const release of waiting.splice(0)) release();
  await Promise.all(running.splice(0).map((sidecar) => sidecar.close()));
});
afterAll(async () => {
  await Promise.all([upstream.close(), held.close()]);
});

describe('reload: listen address', () => {
  it('moves the ingress to the new address; the request in flight on the old one finishes', async () => {
    const sidecar = await startSidecar(version(1));
    running.push(sidecar);
    const oldPort = sidecar.sidecar.ingressPort!;
    // A keep-alive client on the old address, with one request in flight.
    const client = new Client(`http://127.0.0.1:${oldPort}`);
    const inFlight = client.request({ path: '/hold', method: 'GET' });
    await waitFor('the held request to reach the upstream', () => (waiting.length === 1 ? true : undefined));

    const newPort = await closedPort();
    writeFileSync(sidecar.file, version(2, `127.0.0.1:${newPort}`));
    expect((await postReload(sidecar)).status).toBe(200);
    expect(sidecar.sidecar.ingressPort).toBe(newPort);
    expect(await versionAt(`http://127.0.0.1:${newPort}/`)).toBe('2');

    // The old address stopped accepting, yet its request in flight completes.
    await waitFor('the old address to refuse', () => refused(oldPort));
    waiting.shift()!();
    const response = await inFlight;
    expect(response.statusCode).toBe(200);
    expect(response.headers['x-config-version']).toBe('1'); // it ran on the snapshot it started with
    expect(response.headers.connection).toBe('close');
    expect(await response.body.text()).toBe('held');
    await client.close();
  });

  it('moves the admin port too (the reload is answered on the old one)', async () => {
    const sidecar = await startSidecar(version(1));
    running.push(sidecar);
    const oldAdmin = sidecar.sidecar.adminPort!;
    const newAdmin = await closedPort();
    writeFileSync(sidecar.file, version(2, '127.0.0.1:0', `127.0.0.1:${newAdmin}`));
    expect((await postReload(sidecar, oldAdmin)).status).toBe(200);
    expect(sidecar.sidecar.adminPort).toBe(newAdmin);
    const health = await request(`http://127.0.0.1:${newAdmin}/healthz`);
    expect(health.statusCode).toBe(200);
    await health.body.dump();
    await waitFor('the old admin port to refuse', () => refused(oldAdmin));
  });

  it('a bind conflict fails the reload and keeps the old listener and config', async () => {
    const sidecar = await startSidecar(version(1));
    running.push(sidecar);
    const admin = `http://127.0.0.1:${sidecar.sidecar.adminPort}`;
    const oldPort = sidecar.sidecar.ingressPort!;
    const squatter = await startTcpServer((socket) => socket.destroy());
    const failures = await reloads(admin, 'failure');
    const hash = ((await (await request(`${admin}/config`)).body.json()) as { hash: string }).hash;

    writeFileSync(sidecar.file, version(2, `127.0.0.1:${squatter.port}`));
    const answer = await postReload(sidecar);
    expect(answer).toEqual({ status: 400, body: { errors: [`ingress.listen: cannot listen on 127.0.0.1:${squatter.port}: address already in use`] } });
    expect(await reloads(admin, 'failure')).toBeGreaterThan(failures);
    expect(sidecar.sidecar.ingressPort).toBe(oldPort);
    expect(await versionAt(`http://127.0.0.1:${oldPort}/`)).toBe('1');
    expect(((await (await request(`${admin}/config`)).body.json()) as { hash: string }).hash).toBe(hash);

    // Once the address is free, the same file applies.
    await squatter.close();
    expect((await postReload(sidecar)).status).toBe(200);
    expect(sidecar.sidecar.ingressPort).toBe(squatter.port);
    expect(await versionAt(`http://127.0.0.1:${squatter.port}/`)).toBe('2');
  });

  it('a bind conflict on one listener leaves the others where they were too', async () => {
    const sidecar = await startSidecar(version(1));
    running.push(sidecar);
    const oldIngress = sidecar.sidecar.ingressPort!;
    const oldAdmin = sidecar.sidecar.adminPort!;
    const squatter = await startTcpServer((socket) => socket.destroy());
    const freeIngress = await closedPort();
    writeFileSync(sidecar.file, version(2, `127.0.0.1:${freeIngress}`, `127.0.0.1:${squatter.port}`));
    const answer = await postReload(sidecar);
    expect(answer.status).toBe(400);
    expect(answer.body.errors).toEqual([`admin.listen: cannot listen on 127.0.0.1:${squatter.port}: address already in use`]);
    expect(sidecar.sidecar.ingressPort).toBe(oldIngress);
    expect(sidecar.sidecar.adminPort).toBe(oldAdmin);
    expect(await versionAt(`http://127.0.0.1:${oldIngress}/`)).toBe('1');
    // The new ingress server that did bind was closed again.
    await waitFor('the tentative ingress address to be free', () => refused(freeIngress));
    await squatter.close();
  });

  it('new listener limits apply without a rebind', async () => {
    const sidecar = await startSidecar(version(1));
    running.push(sidecar);
    const big = { 'x-big': 'a'.repeat(4_000) };
    const before = await request(sidecar.url('/'), { headers: big });
    expect(before.statusCode).toBe(200);
    await before.body.dump();
    writeFileSync(sidecar.file, version(2).replace('  listen: 127.0.0.1:0\n  routes:', '  listen: 127.0.0.1:0\n  maxHeaderSize: 2KiB\n  routes:'));
    expect((await postReload(sidecar)).status).toBe(200);
    // Node sizes a connection's parser when it is accepted: a new connection sees the new limit.
    const fresh = new Client(sidecar.url(''));
    const after = await fresh.request({ path: '/', method: 'GET', headers: big });
    expect(after.statusCode).toBe(431);
    await after.body.dump();
    await fresh.close();
  });
});

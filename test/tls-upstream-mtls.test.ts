/**
 * Client certificates to upstreams (issue 17): an `https://` upstream that
 * requires a client certificate is reached with the configured one, and a
 * rotated certificate file is picked up without a restart (new requests get
 * a new pool, the old one drains). A CA file replaced at the same path is
 * seen too: before, the pool read the CA once and was keyed on its path.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import type { IncomingMessage } from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';
import { request } from 'undici';
import { listenOnLoopback } from './helpers/servers.ts';
import { metric, renameReplace, tempDir, waitFor } from './helpers/reload.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { TestCa, type IssuedCert } from './helpers/tls.ts';

const ROTATION_DEADLINE_MS = 3_000;

/**
 * An HTTPS upstream that wants a client certificate from `clients` and answers
 * with the fingerprint of the one it got; a WebSocket gets it as its first message.
 */
async function mtlsUpstream(server: IssuedCert, clients: TestCa): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const fingerprint = (req: IncomingMessage) => (req.socket as TLSSocket).getPeerX509Certificate()?.fingerprint256 ?? 'none';
  const upstream = await listenOnLoopback(
    createServer({ cert: server.cert, key: server.key, ca: clients.ca, requestCert: true, rejectUnauthorized: true }, (req, res) => {
      req.resume();
      res.end(fingerprint(req));
    }),
  );
  new WebSocketServer({ server: upstream.server }).on('connection', (socket, req) => socket.send(fingerprint(req)));
  return upstream;
}

describe('mTLS to upstreams', () => {
  let serverCa: TestCa;
  let clients: TestCa;
  let alice: IssuedCert;
  let alice2: IssuedCert;
  let upstream: Awaited<ReturnType<typeof mtlsUpstream>>;
  const running: RunningSidecar[] = [];

  beforeAll(async () => {
    serverCa = new TestCa('server CA');
    clients = new TestCa('clients CA');
    alice = clients.issue('alice', { client: true });
    alice2 = clients.issue('alice', { client: true });
    upstream = await mtlsUpstream(serverCa.issue('payments.test'), clients);
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((sidecar) => sidecar.close()));
  });
  afterAll(async () => {
    await upstream?.close();
    serverCa?.remove();
    clients?.remove();
  });

  async function start(dir: string): Promise<RunningSidecar> {
    const sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  payments:
    endpoints: [https://127.0.0.1:${upstream.port}]
    tls: { serverName: payments.test, ca: ${join(dir, 'ca.pem')}, cert: ${join(dir, 'client.crt')}, key: ${join(dir, 'client.key')} }
ingress:
  listen: 127.0.0.1:0
  routes: [ { match: { path: / }, upstream: payments, websocket: true } ]
`);
    running.push(sidecar);
    return sidecar;
  }

  const fingerprintAt = async (sidecar: RunningSidecar): Promise<string> => {
    const response = await request(sidecar.url('/charge'));
    return `${response.statusCode} ${await response.body.text()}`;
  };

  it('presents the configured client certificate, and a rotated one without a restart', async () => {
    const dir = tempDir();
    copyFileSync(serverCa.caFile, join(dir, 'ca.pem'));
    writeFileSync(join(dir, 'client.crt'), alice.cert);
    writeFileSync(join(dir, 'client.key'), alice.key);
    const sidecar = await start(dir);
    expect(await fingerprintAt(sidecar)).toBe(`200 ${alice.fingerprint}`);
    // A WebSocket upgrade goes on a connection of its own, with the same certificate.
    const ws = new WebSocket(sidecar.url('/ws').replace('http:', 'ws:'));
    const first = await new Promise<string>((resolve, reject) => {
      ws.once('message', (data) => resolve(String(data)));
      ws.once('error', reject);
    });
    ws.close();
    expect(first).toBe(alice.fingerprint);

    renameReplace(join(dir, 'client.crt'), alice2.cert);
    renameReplace(join(dir, 'client.key'), alice2.key);
    const failures: string[] = [];
    await waitFor(
      'the rotated client certificate upstream',
      async () => {
        const seen = await fingerprintAt(sidecar);
        if (!seen.startsWith('200 ')) failures.push(seen);
        return seen === `200 ${alice2.fingerprint}` ? true : undefined;
      },
      ROTATION_DEADLINE_MS,
      100,
    );
    expect(failures).toEqual([]);
    const admin = sidecar.admin('').replace(/\/$/, '');
    expect(await metric(admin, 'sidecar_tls_reloads_total', '{listener="",upstream="payments",result="success"}')).toBe(1);

    // GET /certs lists the client certificate now in use and the CA, and never a key.
    const certs = await (await request(sidecar.admin('/certs'))).body.text();
    const listed = (JSON.parse(certs) as { certificates: Array<Record<string, unknown>> }).certificates;
    expect(listed).toEqual([
      expect.objectContaining({ upstream: 'payments', use: 'client', subject: 'CN=alice', sha256: alice2.fingerprint, file: join(dir, 'client.crt') }),
      expect.objectContaining({ upstream: 'payments', use: 'ca', subject: 'CN=server CA', file: join(dir, 'ca.pem') }),
    ]);
    expect(certs).not.toMatch(/PRIVATE KEY|BEGIN/);
    expect(certs).not.toContain(alice2.key.split('\n')[1]);
    const expiry = await metric(admin, 'sidecar_tls_certificate_expiry_timestamp_seconds', '{listener="",upstream="payments",serverName="payments.test"}');
    expect(expiry).toBeGreaterThan(Date.now() / 1000);
  });

  it('sees a CA file replaced at the same path', async () => {
    const dir = tempDir();
    const otherCa = new TestCa('not the server CA');
    const plain = await listenOnLoopback(
      createServer(serverCa.issue('payments.test'), (req, res) => {
        req.resume();
        res.end('verified');
      }),
    );
    try {
      copyFileSync(otherCa.caFile, join(dir, 'ca.pem'));
      const sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  payments: { endpoints: [https://127.0.0.1:${plain.port}], tls: { serverName: payments.test, ca: ${join(dir, 'ca.pem')} } }
ingress:
  listen: 127.0.0.1:0
  routes: [ { match: { path: / }, upstream: payments } ]
`);
      running.push(sidecar);
      // The CA does not sign the upstream's certificate: no connection.
      expect(await fingerprintAt(sidecar)).toMatch(/^502 /);
      // Replaced in place, at the same path.
      writeFileSync(join(dir, 'ca.pem'), serverCa.ca);
      await waitFor('a request verified with the new CA', async () => ((await fingerprintAt(sidecar)) === '200 verified' ? true : undefined), ROTATION_DEADLINE_MS, 100);
    } finally {
      await plain.close();
      otherCa.remove();
    }
  });
});

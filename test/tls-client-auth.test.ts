/**
 * Client certificates on ingress (issue 17). With `clientAuth: require` a
 * client without a certificate, or with one from another CA, gets no
 * response (the refusal is logged with the reason and peer, and counted); a
 * good one reaches the app with its subject in the `forwardClientCert`
 * header, and a header of that name from the client never reaches it. With
 * `request`, a client without a certificate is served, without the header.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request as httpsRequest } from 'node:https';
import { clientEnv, run } from './helpers/egress.ts';
import { eventually } from './helpers/misbehave.ts';
import { spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';
import { metric } from './helpers/reload.ts';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { TestCa, type IssuedCert } from './helpers/tls.ts';
import { WebSocket, WebSocketServer } from 'ws';

const FORGED = 'Subject="CN=admin"';

/** What the app saw of each request: its client certificate header. */
let seen: Array<string | undefined> = [];

/** The app: answers with the header it got; a WebSocket upgrade is accepted and noted the same way. */
async function startApp(): Promise<TestServer> {
  const app = await startHttpServer((req, res) => {
    req.resume();
    seen.push(req.headers['x-client-cert'] as string | undefined);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ cert: req.headers['x-client-cert'] ?? null }));
  });
  new WebSocketServer({ server: app.server }).on('connection', (socket, req) => {
    seen.push(req.headers['x-client-cert'] as string | undefined);
    socket.close();
  });
  return app;
}

interface Client {
  readonly ca: string;
  readonly cert?: IssuedCert;
}

/** A GET over a new connection, with the forged header; the app's answer, or the error that took its place. */
function get(port: number, path: string, client: Client): Promise<{ status: number; body: { cert: string | null } } | { error: string }> {
  return new Promise((resolve) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        ca: client.ca,
        ...(client.cert ? { cert: client.cert.cert, key: client.cert.key } : {}),
        headers: { 'x-client-cert': FORGED },
        agent: false,
        timeout: 5_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) as { cert: string | null } }));
        res.on('error', (err) => resolve({ error: err.message }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    req.end();
  });
}

/** A server CA with the sidecar's certificate, the clients' CA with alice, and another CA with mallory. */
class Pkis {
  readonly ca = new TestCa('server CA');
  readonly clients = new TestCa('clients CA');
  readonly strangers = new TestCa('another CA');
  readonly server = this.ca.issue('localhost', { dns: ['localhost'], ips: ['127.0.0.1'] });
  readonly alice = this.clients.issue('alice', { client: true, dns: ['alice.clients.test'] });
  readonly mallory = this.strangers.issue('mallory', { client: true });

  /** The `tls` block of a listener asking for client certificates. */
  tls(clientAuth: 'request' | 'require', header: string): string {
    return `{ cert: ${this.server.certFile}, key: ${this.server.keyFile}, clientAuth: ${clientAuth}, ca: ${this.clients.caFile}, forwardClientCert: ${header} }`;
  }

  remove(): void {
    for (const each of [this.ca, this.clients, this.strangers]) each.remove();
  }
}

describe('clientAuth: require', () => {
  let pki: Pkis;
  let app: TestServer;
  let sidecar: SidecarProcess;

  beforeAll(async () => {
    pki = new Pkis();
    app = await startApp();
    sidecar = await spawnSidecar([
      '--config',
      writeConfig(`
admin: { listen: 127.0.0.1:0 }
log: { level: info, access: true }
upstreams: { app: { endpoints: [${app.url}] } }
ingress:
  listen: 127.0.0.1:0
  tls: ${pki.tls('require', 'x-client-cert')}
  routes: [ { match: { path: / }, upstream: app } ]
`),
    ]);
  });
  afterAll(async () => {
    await sidecar?.stop();
    await app?.close();
    pki?.remove();
  });

  it('no certificate, or one from another CA, gets no response; each refusal is logged and counted', async () => {
    seen = [];
    const port = sidecar.ingressPort!;
    const admin = `http://127.0.0.1:${sidecar.adminPort}`;
    expect(await get(port, '/none', { ca: pki.ca.ca })).toHaveProperty('error');
    expect(await get(port, '/stranger', { ca: pki.ca.ca, cert: pki.mallory })).toHaveProperty('error');
    expect(seen).toEqual([]);

    const errors = (reason: string) => metric(admin, 'sidecar_tls_handshake_errors_total', `{listener="ingress",reason="${reason}"}`);
    expect(await errors('client_certificate_missing')).toBe(1);
    expect(await errors('client_certificate_invalid')).toBe(1);
    let refusals: Array<Record<string, unknown>> = [];
    await eventually(() => (refusals = sidecar.lines.filter((line) => String(line.msg).startsWith('client certificate refused'))).length === 2, 100, 20);
    expect(refusals).toEqual([
      expect.objectContaining({ level: 'warn', reason: 'client_certificate_missing', clientAddress: '127.0.0.1', clientPort: expect.any(Number) }),
      expect.objectContaining({ level: 'warn', reason: 'client_certificate_invalid', clientAddress: '127.0.0.1', subject: 'CN=mallory' }),
    ]);
  });

  it('a good certificate reaches the app with its subject and SANs; the forged header never does', async () => {
    seen = [];
    const port = sidecar.ingressPort!;
    const answer = await get(port, '/alice', { ca: pki.ca.ca, cert: pki.alice });
    expect(answer).toMatchObject({ status: 200 });
    const header = (answer as { body: { cert: string } }).body.cert;
    expect(header).toMatch(/^Hash=[0-9a-f]{64};Subject="CN=alice";DNS=alice\.clients\.test$/);
    expect(header).toContain(pki.alice.fingerprint.replaceAll(':', '').toLowerCase());
    expect(seen).toEqual([header]);

    // curl, a real client, with the certificate in files; the access line names the protocol and the subject.
    const result = await run(
      'curl',
      ['-sS', '--cacert', pki.ca.caFile, '--cert', pki.alice.certFile, '--key', pki.alice.keyFile, '-H', `x-client-cert: ${FORGED}`, '-H', 'x-request-id: curl-alice', `https://127.0.0.1:${port}/curl`],
      clientEnv(),
    );
    expect(result.stderr).toBe('');
    expect((JSON.parse(result.stdout) as { cert: string }).cert).toBe(header);
    expect(seen.includes(FORGED)).toBe(false);
    let line: Record<string, unknown> | undefined;
    await eventually(() => (line = sidecar.lines.find((l) => l.log === 'access' && l.reqId === 'curl-alice')) !== undefined, 100, 20);
    expect(line).toMatchObject({ status: 200, tls: expect.stringMatching(/^TLSv1\.[23]$/), clientCert: 'CN=alice' });
  });
});

describe('clientAuth: request', () => {
  let pki: Pkis;
  let app: TestServer;
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    pki = new Pkis();
    app = await startApp();
    sidecar = await startSidecar(`${TEST_BASE}
upstreams: { app: { endpoints: [${app.url}] } }
ingress:
  listen: 127.0.0.1:0
  tls: ${pki.tls('request', 'X-Client-Cert')}
  routes: [ { match: { path: / }, upstream: app, websocket: true } ]
`);
  });
  afterAll(async () => {
    await sidecar?.close();
    await app?.close();
    pki?.remove();
  });

  it('serves a client without a certificate (without the header), forwards a verified one, refuses one that does not verify', async () => {
    seen = [];
    const port = sidecar.sidecar.ingressPort!;
    expect(await get(port, '/none', { ca: pki.ca.ca })).toEqual({ status: 200, body: { cert: null } });
    expect(await get(port, '/alice', { ca: pki.ca.ca, cert: pki.alice })).toMatchObject({ status: 200, body: { cert: expect.stringContaining('Subject="CN=alice"') } });
    expect(await get(port, '/stranger', { ca: pki.ca.ca, cert: pki.mallory })).toHaveProperty('error');
    expect(seen).toEqual([undefined, expect.stringContaining('CN=alice')]);
  });

  it('a WebSocket upgrade gets the header from the certificate too, never the client\'s own', async () => {
    seen = [];
    const port = sidecar.sidecar.ingressPort!;
    for (const cert of [undefined, pki.alice]) {
      const ws = new WebSocket(`wss://127.0.0.1:${port}/ws`, {
        ca: pki.ca.ca,
        ...(cert ? { cert: cert.cert, key: cert.key } : {}),
        headers: { 'x-client-cert': FORGED },
      });
      await new Promise<void>((resolve, reject) => {
        ws.once('close', () => resolve());
        ws.once('error', reject);
      });
    }
    expect(seen).toEqual([undefined, expect.stringContaining('Subject="CN=alice"')]);
  });
});


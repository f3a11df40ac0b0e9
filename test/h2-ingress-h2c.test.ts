/**
 * Cleartext HTTP/2 with prior knowledge on a plain ingress listener
 * (`ingress.h2c: true`, issue 18): curl --http2-prior-knowledge and Node's
 * http2.connect get HTTP/2; HTTP/1.1 on the same port still works; an
 * `Upgrade: h2c` offer (curl --http2 on http://) is answered as HTTP/1.1.
 * Without `h2c` the preface is no request at all.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientEnv, run } from './helpers/egress.ts';
import { h2Request, h2Session } from './helpers/h2.ts';
import { echoServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

const curl = (args: string[]) => run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{http_version}', ...args], clientEnv());

describe('h2c on a plain ingress listener', () => {
  let app: TestServer;
  let sidecar: RunningSidecar;
  let plain: RunningSidecar;

  beforeAll(async () => {
    app = await echoServer();
    const config = (h2c: boolean) => `${TEST_BASE}
upstreams: { app: { endpoints: [${app.url}] } }
ingress:
  listen: 127.0.0.1:0
  h2c: ${h2c}
  routes: [ { match: { path: / }, upstream: app } ]
`;
    sidecar = await startSidecar(config(true));
    plain = await startSidecar(config(false));
  });
  afterAll(async () => {
    await sidecar?.close();
    await plain?.close();
    await app?.close();
  });

  it('curl --http2-prior-knowledge gets HTTP/2, plain HTTP/1.1 and an Upgrade: h2c offer get HTTP/1.1, on one port', async () => {
    expect((await curl(['--http2-prior-knowledge', sidecar.url('/prior')])).stdout).toBe('200 2');
    expect((await curl(['--http1.1', sidecar.url('/h1')])).stdout).toBe('200 1.1');
    expect((await curl(['--http2', sidecar.url('/upgrade')])).stdout).toBe('200 1.1');
  });

  it("Node's http2.connect reaches the app through h2c; many streams on one connection", async () => {
    const session = await h2Session(`http://127.0.0.1:${sidecar.sidecar.ingressPort}`);
    try {
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => h2Request(session, { ':path': `/n/${i}` })));
      expect(answers.map((answer) => answer.status)).toEqual(Array.from({ length: 20 }, () => 200));
      expect((JSON.parse(answers[7].body.toString()) as { url: string }).url).toBe('/n/7');
    } finally {
      session.close();
    }
  });

  it('a reload that turns h2c off is refused (it needs a restart); the listener keeps serving h2c', async () => {
    const { readFileSync, writeFileSync } = await import('node:fs');
    const before = readFileSync(sidecar.file, 'utf8');
    writeFileSync(sidecar.file, before.replace('h2c: true', 'h2c: false'));
    const result = await sidecar.sidecar.reload();
    writeFileSync(sidecar.file, before);
    expect(result).toMatchObject({ ok: false, errors: ['ingress.h2c: turning h2c off needs a restart'] });
    expect((await curl(['--http2-prior-knowledge', sidecar.url('/still')])).stdout).toBe('200 2');
  });

  it('without h2c: true, a preface is not served as HTTP/2', async () => {
    const result = await curl(['--http2-prior-knowledge', '--max-time', '5', plain.url('/prior')]);
    expect(result.stdout).not.toBe('200 2');
  });
});

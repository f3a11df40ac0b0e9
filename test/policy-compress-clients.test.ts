/**
 * Compressed answers as real clients take them (issue 19): curl
 * `--compressed`, Python `requests` (installed here; it decodes gzip and
 * deflate) and Node's fetch through HTTP_PROXY on an egress route with
 * `compress`. Each decodes the answer itself and must get exactly the
 * upstream's bytes (compared by SHA-256).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { NODE, clientEnv, run } from './helpers/egress.ts';
import { sha256 } from './helpers/bodies.ts';
import { textBody } from './helpers/encoded.ts';

const BODY = textBody(200 * 1024);
const DIGEST = sha256(BODY);

describe('compress: real clients decode what the sidecar sends', () => {
  let upstream: TestServer;
  let sidecar: RunningSidecar;

  beforeAll(async () => {
    upstream = await startHttpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length });
      res.end(BODY);
    });
    sidecar = await startSidecar(`${TEST_BASE}
upstreams: { app: { endpoints: [${upstream.url}] } }
ingress:
  listen: 127.0.0.1:0
  compress: { algorithms: [br, zstd, gzip] }
  routes:
    - { name: app, match: { path: / }, upstream: app }
egress:
  listen: 127.0.0.1:0
  routes:
    - { name: partner, match: { host: partner.example }, upstream: app, compress: {} }
`);
  });
  afterAll(async () => {
    await sidecar?.close();
    await upstream?.close();
  });

  /** curl with `args`: the decoded body (written to a file) and the Content-Encoding it was sent with. */
  async function curl(path: string, args: string[]): Promise<{ encoding: string; body: Buffer }> {
    const file = join(mkdtempSync(join(tmpdir(), 'sidecar-curl-')), 'body');
    const result = await run('curl', ['-sS', ...args, '-o', file, '-w', '%header{content-encoding}', sidecar.url(path)], clientEnv(), 20_000);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    return { encoding: result.stdout, body: readFileSync(file) };
  }

  it('curl --compressed gets br (its first choice of what we offer) and decodes the upstream bytes', async () => {
    const answer = await curl('/data', ['--compressed']);
    expect(answer.encoding).toBe('br');
    expect(sha256(answer.body)).toBe(DIGEST);
  });

  it('curl asking for gzip only gets gzip', async () => {
    const answer = await curl('/gz', ['--compressed', '-H', 'Accept-Encoding: gzip']);
    expect(answer.encoding).toBe('gzip');
    expect(sha256(answer.body)).toBe(DIGEST);
  });

  it('Python requests gets gzip and decodes the upstream bytes', async () => {
    const script = [
      'import hashlib, json, sys, requests',
      `r = requests.get(${JSON.stringify(sidecar.url('/py'))}, timeout=10)`,
      'print(json.dumps({"status": r.status_code, "encoding": r.headers.get("content-encoding"), "sha": hashlib.sha256(r.content).hexdigest()}))',
    ].join('\n');
    const result = await run('python3', ['-c', script], clientEnv());
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toEqual({ status: 200, encoding: 'gzip', sha: DIGEST });
  });

  it("Node's fetch through HTTP_PROXY gets an egress route's answer compressed, and decodes it", async () => {
    const script = [
      "const { createHash } = await import('node:crypto');",
      "const r = await fetch('http://partner.example/quota');",
      'const body = Buffer.from(await r.arrayBuffer());',
      "console.log(JSON.stringify({ status: r.status, encoding: r.headers.get('content-encoding'), sha: createHash('sha256').update(body).digest('hex') }));",
    ].join('\n');
    const result = await run(NODE, ['--input-type=module', '-e', script], clientEnv({ HTTP_PROXY: sidecar.egressUrl!, NODE_USE_ENV_PROXY: '1' }));
    expect(result.stderr).toBe('');
    const answer = JSON.parse(result.stdout);
    expect(answer).toMatchObject({ status: 200, sha: DIGEST });
    expect(['br', 'gzip']).toContain(answer.encoding);
  });
});

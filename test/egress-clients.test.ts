/**
 * Real clients pointed at the egress port the way apps are: curl (`-x` and
 * `http_proxy`), Node 24's fetch with NODE_USE_ENV_PROXY=1 and
 * HTTP_PROXY/HTTPS_PROXY, undici's EnvHttpProxyAgent, and Python 3's urllib.
 * HTTPS goes through CONNECT to a local TLS server whose CA is made in the
 * test. The sidecar runs as its own process so its access log can be read.
 *
 * Node's fetch (undici 7 inside Node 24) tunnels even http:// URLs through
 * CONNECT; the Node test shows that a logical name, a retry policy and the
 * access log still apply to those calls.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnvHttpProxyAgent, request } from 'undici';
import { echoServer, startHttpServer, type TestServer } from './helpers/servers.ts';
import { spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';
import { makeTestPki, startHttpsServer, type TestHttpsServer, type TestPki } from './helpers/tls.ts';
import { NODE, accessLines, clientEnv, eventually, run } from './helpers/egress.ts';

describe('real clients through the egress port', () => {
  let pki: TestPki;
  let tls: TestHttpsServer;
  let payments: TestServer;
  let flaky: TestServer;
  let sidecar: SidecarProcess;
  let proxyUrl: string;
  const flakyCalls = new Map<string, number>();

  beforeAll(async () => {
    pki = makeTestPki();
    tls = await startHttpsServer(pki, (req, res) => res.end(`secure ${req.url}`));
    payments = await echoServer();
    // Fails the first call of every distinct URL with 503, then answers.
    flaky = await startHttpServer((req, res) => {
      const calls = (flakyCalls.get(req.url!) ?? 0) + 1;
      flakyCalls.set(req.url!, calls);
      req.resume();
      if (calls === 1) {
        res.writeHead(503, { 'content-type': 'text/plain' }).end('try again');
        return;
      }
      res.end(`charged on call ${calls}`);
    });
    const file = writeConfig(`
admin: { listen: 127.0.0.1:0 }
log: { level: debug, access: true }
upstreams:
  payments: { endpoints: [${payments.url}] }
  billing: { endpoints: [${flaky.url}] }
egress:
  listen: 127.0.0.1:0
  routes:
    - { name: billing, match: { host: billing.internal }, upstream: billing, retry: { attempts: 2 } }
    - { name: payments, match: { host: payments.internal }, upstream: payments }
    - { name: tls-local, match: { host: localhost, ports: [${tls.port}] } }
`);
    sidecar = await spawnSidecar(['--config', file]);
    proxyUrl = `http://127.0.0.1:${sidecar.egressPort}`;
  });
  afterAll(async () => {
    await sidecar?.stop();
    await tls.close();
    await payments.close();
    await flaky.close();
    pki.remove();
  });

  const accessFor = (predicate: (line: Record<string, unknown>) => boolean) =>
    eventually(() => accessLines(sidecar.lines).find(predicate));

  describe('curl', () => {
    it('curl -x sends http:// in absolute-form to a logical name', async () => {
      const result = await run('curl', ['-sS', '-x', proxyUrl, 'http://payments.internal/curl-x?a=1'], clientEnv());
      expect(result.code, result.stderr).toBe(0);
      expect(JSON.parse(result.stdout)).toMatchObject({ url: '/curl-x?a=1', headers: { 'x-forwarded-host': 'payments.internal' } });
      const line = await accessFor((l) => l.path === '/curl-x');
      expect(line).toMatchObject({ listener: 'egress', route: 'payments', upstream: 'payments', host: 'payments.internal', method: 'GET', status: 200 });
    });

    it('curl reads the lower-case http_proxy (and ignores upper-case HTTP_PROXY)', async () => {
      const lower = await run('curl', ['-sS', 'http://payments.internal/lower'], clientEnv({ http_proxy: proxyUrl }));
      expect(lower.code, lower.stderr).toBe(0);
      expect(JSON.parse(lower.stdout).url).toBe('/lower');
      const upper = await run('curl', ['-sS', '--max-time', '5', 'http://payments.internal/upper'], clientEnv({ HTTP_PROXY: proxyUrl }));
      expect(upper.code).not.toBe(0); // curl resolved payments.internal itself, and failed
    });

    it('curl -x tunnels https:// through CONNECT to a local TLS server (test CA)', async () => {
      const result = await run('curl', ['-sS', '--cacert', pki.caFile, '-x', proxyUrl, `https://localhost:${tls.port}/curl-tls`], clientEnv());
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toBe('secure /curl-tls');
      const line = await accessFor((l) => l.method === 'CONNECT' && l.route === 'tls-local' && (l.bytesIn as number) > 0);
      expect(line).toMatchObject({ listener: 'egress', host: 'localhost', status: 200, endpoint: `localhost:${tls.port}` });
      expect(line.bytesOut as number).toBeGreaterThan(0);
    });
  });

  describe('Node 24 fetch with NODE_USE_ENV_PROXY=1', () => {
    const nodeEnv = () => clientEnv({ HTTP_PROXY: proxyUrl, HTTPS_PROXY: proxyUrl, NODE_USE_ENV_PROXY: '1', NODE_EXTRA_CA_CERTS: pki.caFile });

    it('http:// through CONNECT: the logical name routes, the retry policy applies, the access log has the request', async () => {
      const script = `const r = await fetch('http://billing.internal/charge?order=node'); console.log(r.status, await r.text());`;
      const result = await run(NODE, ['--input-type=module', '-e', script], nodeEnv());
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout.trim()).toBe('200 charged on call 2');
      expect(flakyCalls.get('/charge?order=node')).toBe(2);
      // Node's fetch tunnelled the http:// request through CONNECT and the sidecar routed the HTTP inside it.
      expect(sidecar.lines.some((l) => l.msg === 'CONNECT carries HTTP: each request is routed' && l.host === 'billing.internal' && l.port === 80)).toBe(true);
      const line = await accessFor((l) => l.path === '/charge' && l.host === 'billing.internal');
      expect(line).toMatchObject({ listener: 'egress', route: 'billing', upstream: 'billing', method: 'GET', status: 200, attempts: 2 });
    });

    it('https:// through CONNECT to a local TLS server', async () => {
      const script = `const r = await fetch('https://localhost:${tls.port}/node-tls'); console.log(r.status, await r.text());`;
      const result = await run(NODE, ['--input-type=module', '-e', script], nodeEnv());
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout.trim()).toBe('200 secure /node-tls');
    });
  });

  describe("undici's EnvHttpProxyAgent", () => {
    it('sends http:// in absolute-form and https:// through CONNECT', async () => {
      const agent = new EnvHttpProxyAgent({ httpProxy: proxyUrl, httpsProxy: proxyUrl, noProxy: '', requestTls: { ca: pki.ca } });
      try {
        const plain = await request('http://payments.internal/undici', { dispatcher: agent });
        expect(plain.statusCode).toBe(200);
        expect(((await plain.body.json()) as { url: string }).url).toBe('/undici');
        const secure = await request(`https://localhost:${tls.port}/undici-tls`, { dispatcher: agent });
        expect(await secure.body.text()).toBe('secure /undici-tls');
      } finally {
        await agent.close();
      }
    });
  });

  describe('Python 3 urllib', () => {
    it('uses http_proxy for http:// and https_proxy (CONNECT) for https://', async () => {
      const script = [
        'import ssl, sys, urllib.request',
        'print(urllib.request.urlopen("http://payments.internal/python", timeout=10).read().decode())',
        `context = ssl.create_default_context(cafile=${JSON.stringify(pki.caFile)})`,
        `print(urllib.request.urlopen("https://localhost:${tls.port}/python-tls", context=context, timeout=10).read().decode())`,
      ].join('\n');
      const result = await run('python3', ['-c', script], clientEnv({ http_proxy: proxyUrl, https_proxy: proxyUrl }));
      expect(result.code, result.stderr).toBe(0);
      const [plain, secure] = result.stdout.trim().split('\n');
      expect(JSON.parse(plain).url).toBe('/python');
      expect(secure).toBe('secure /python-tls');
    });
  });
});

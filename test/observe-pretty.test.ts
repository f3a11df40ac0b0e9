/**
 * `--pretty` is for a person: one readable line per request, e.g.
 * `12:00:01.123 ingress GET /api/x -> 200 3.2ms app (127.0.0.1:3000) reqId=...`,
 * and one line per other event (`time LEVEL message key=value ...`), never a
 * block of one line per field. The sidecar runs in its own process with
 * --pretty and its stdout is read (escaping: unit-pretty.test.ts).
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from './helpers/egress.ts';
import { LOGGED_BASE, spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';
import { closedPort, startHttpServer, type TestServer } from './helpers/servers.ts';

let upstream: TestServer;
let sidecar: SidecarProcess;
let ingressPort = 0;

/** The lines the process wrote (spawnSidecar keeps a line that is not JSON as `{ raw }`). */
const text = (): string[] => sidecar.lines.map((line) => (typeof line.raw === 'string' ? line.raw : JSON.stringify(line)));

beforeAll(async () => {
  upstream = await startHttpServer((req, res) => {
    req.resume();
    res.end('hello');
  });
  sidecar = await spawnSidecar(
    [
      '--pretty',
      '--config',
      writeConfig(`${LOGGED_BASE}upstreams:
  app: { endpoints: [${upstream.url}] }
  dead: { endpoints: [http://127.0.0.1:${await closedPort()}] }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: dead, match: { path: /dead }, upstream: dead }
    - { name: app, match: { path: / }, upstream: app }
`),
    ],
    { waitListening: false },
  );
  const listening = await eventually(() => text().find((line) => line.includes('sidecar listening')), 15_000);
  ingressPort = Number(/ ingressPort=(\d+)/.exec(listening)?.[1]);
});

afterAll(async () => {
  await sidecar?.stop();
  await upstream?.close();
});

const TIME = '\\d\\d:\\d\\d:\\d\\d\\.\\d{3}';

async function get(path: string, reqId: string): Promise<number> {
  const res = await request(`http://127.0.0.1:${ingressPort}${path}`, { headers: { 'x-request-id': reqId } });
  await res.body.text();
  return res.statusCode;
}

describe('--pretty', () => {
  it('other log lines: one line each, time LEVEL message key=value', () => {
    const listening = text().find((line) => line.includes('sidecar listening'))!;
    expect(listening).toMatch(new RegExp(`^${TIME} INFO  sidecar listening .*ingress=127\\.0\\.0\\.1:0 ingressPort=${ingressPort} `));
    expect(text().some((line) => /^\s+\w+: /.test(line))).toBe(false); // no "    key: value" continuation lines
  });

  it('an access line is one line: listener, method, path, status, duration, upstream (endpoint), request id', async () => {
    expect(await get('/api/x', 'pretty-1')).toBe(200);
    const line = await eventually(() => text().find((l) => l.endsWith('reqId=pretty-1')));
    expect(line).toMatch(new RegExp(`^${TIME} ingress GET /api/x -> 200 [\\d.]+ms app \\(127\\.0\\.0\\.1:${upstream.port}\\) reqId=pretty-1$`));
  });

  it('the sidecar\'s own error says its code on the same line', async () => {
    expect(await get('/dead', 'pretty-2')).toBe(502);
    const line = await eventually(() => text().find((l) => l.endsWith('reqId=pretty-2')));
    expect(line).toMatch(new RegExp(`^${TIME} ingress GET /dead -> 502 [\\d.]+ms dead \\(127\\.0\\.0\\.1:\\d+\\) error=upstream_connect_failed reqId=pretty-2$`));
  });
});

import { describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startHttpServer } from './helpers/servers.ts';
import { spawnSync } from 'node:child_process';
import { CLI, spawnSidecar, writeConfig } from './helpers/process.ts';

const GOOD = `
admin: { listen: 127.0.0.1:0 }
log: { level: info, access: true }
ingress:
  listen: 127.0.0.1:0
  routes: []
`;

describe('command line', () => {
  it('check: exit 0 and "ok" for a valid file', async () => {
    const proc = await spawnSidecar(['check', '--config', writeConfig(GOOD)], { waitListening: false });
    expect(await proc.exited).toBe(0);
  });

  it('check: prints every error with file:line:col and exits 1, without a stack trace', async () => {
    const file = writeConfig(`admin: { listen: nowhere }\nlog: { levle: info }\n`);
    const proc = await spawnSidecar(['check', '--config', file], { waitListening: false });
    expect(await proc.exited).toBe(1);
    const stderr = proc.stderr();
    expect(stderr).toContain(`${file}:1:18 admin.listen:`);
    expect(stderr).toContain(`${file}:2:8 log.levle:`);
    expect(stderr).not.toMatch(/\n\s+at /); // no stack frames
  });

  it('run: refuses to start with a broken config (exit 1, errors on stderr)', async () => {
    const proc = await spawnSidecar(['--config', writeConfig('ingress: [not, a, map]\n')], { waitListening: false });
    expect(await proc.exited).toBe(1);
    expect(proc.stderr()).toMatch(/sidecar\.yaml:1:\d+ ingress:/);
    expect(proc.stderr()).not.toMatch(/\n\s+at /);
  });

  it('run: a missing file is a clear error, exit 1', async () => {
    const proc = await spawnSidecar(['--config', '/nonexistent/sidecar.yaml'], { waitListening: false });
    expect(await proc.exited).toBe(1);
    expect(proc.stderr()).toContain('/nonexistent/sidecar.yaml');
  });

  it('reads SIDECAR_CONFIG when --config is absent', async () => {
    const proc = await spawnSidecar(['check'], { waitListening: false, env: { SIDECAR_CONFIG: writeConfig(GOOD) } });
    expect(await proc.exited).toBe(0);
  });

  it('schema: prints a JSON Schema that editors can use', () => {
    const result = spawnSync(process.execPath, [CLI, 'schema'], { encoding: 'utf8' });
    expect(result.status).toBe(0);
    const schema = JSON.parse(result.stdout) as { $schema: string; properties: Record<string, unknown>; additionalProperties: boolean };
    expect(schema.$schema).toContain('json-schema.org');
    expect(Object.keys(schema.properties)).toEqual(['admin', 'log', 'workers', 'drainTimeout', 'app', 'upstreams', 'ingress', 'egress', 'tracing']);
    expect(schema.additionalProperties).toBe(false);
  });

  it('SIGTERM: stops accepting, finishes the request in flight, exits 0', async () => {
    let answer: (() => void) | undefined;
    const upstream = await startHttpServer((_req, res) => {
      answer = () => res.end('finished');
    });
    const file = writeConfig(`
admin: { listen: 127.0.0.1:0 }
log: { level: info, access: true }
upstreams: { up: { endpoints: [${upstream.url}] } }
ingress:
  listen: 127.0.0.1:0
  routes: [{ match: { path: / }, upstream: up }]
`);
    const proc = await spawnSidecar(['--config', file]);
    const inFlight = request(`http://127.0.0.1:${proc.ingressPort}/slow?token=q-s3cret`, {
      headers: { authorization: 'Bearer a-s3cret', cookie: 'session=c-s3cret' },
    });
    for (let i = 0; i < 100 && !answer; i++) await new Promise((r) => setTimeout(r, 20));
    proc.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    expect(proc.child.exitCode).toBeNull(); // still draining
    answer!();
    const response = await inFlight;
    expect(await response.body.text()).toBe('finished');
    expect(await proc.exited).toBe(0);
    const access = proc.lines.find((line) => line.log === 'access');
    expect(access).toMatchObject({ listener: 'ingress', method: 'GET', path: '/slow', status: 200, attempts: 1 });
    // Query strings, Authorization and Cookie never reach the logs.
    expect(JSON.stringify(proc.lines)).not.toContain('s3cret');
    await upstream.close();
  });

  it('-- CMD: supervises the app and exits with its exit code (restart: never)', async () => {
    const file = writeConfig(GOOD);
    const proc = await spawnSidecar(['--config', file, '--', process.execPath, '-e', 'setTimeout(() => process.exit(7), 300)']);
    expect(await proc.exited).toBe(7);
  });
});

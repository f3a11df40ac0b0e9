/**
 * What config/secrets.ts finds at load time: values from `${VAR}` (also
 * where an alias or a merge key copies them), secrets by key name and by
 * position, URL userinfo and query; how /config shows them; and config errors
 * that would quote them.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatConfigError, loadConfigText } from '../src/config/load.ts';
import { shownUrl } from '../src/config/secrets.ts';

/** In a folder that exists: app.cwd defaults to the config's folder and must exist. */
const FILE = join(mkdtempSync(join(tmpdir(), 'sidecar-secrets-')), 'sidecar.yaml');

function load(yaml: string, env: NodeJS.ProcessEnv) {
  const result = loadConfigText(yaml, FILE, env);
  if (!result.ok) throw new Error(result.errors.map(formatConfigError).join('\n'));
  return { config: result.config, shown: result.secrets.config(result.config) as Record<string, any>, secrets: result.secrets };
}

function errors(yaml: string, env: NodeJS.ProcessEnv): string {
  const result = loadConfigText(yaml, FILE, env);
  if (result.ok) throw new Error('expected errors');
  return result.errors.map(formatConfigError).join('\n');
}

describe('secrets of a config', () => {
  it('shows a value from ${VAR} as the text around [redacted], and uses the real value', () => {
    const { config, shown } = load(
      `
admin: { listen: "127.0.0.1:\${ADMIN_PORT}" }
upstreams:
  a: { endpoints: ["http://\${HOST}:7001"], connections: "\${CONN}" }
`,
      { ADMIN_PORT: '9902', HOST: 'payments.internal', CONN: '64' },
    );
    expect(config.upstreams.a.endpoints).toEqual(['http://payments.internal:7001']);
    expect(config.upstreams.a.connections).toBe(64);
    expect(shown.admin.listen).toBe('127.0.0.1:[redacted]');
    expect(shown.upstreams.a.endpoints).toEqual(['http://[redacted]:7001']);
    expect(shown.upstreams.a.connections).toBe('[redacted]');
    expect(shown.upstreams.a.balance).toBe('round-robin');
  });

  it('follows ${VAR} values that an alias or a merge key copies elsewhere', () => {
    const { config, shown } = load(
      `
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: a, match: { path: /a, headers: &tenant { x-tenant: "\${TENANT}" } }, upstream: u }
    - { name: b, match: { path: /b, headers: *tenant }, upstream: u }
upstreams:
  u: &base { endpoints: ["http://\${HOST}:1"] }
  v: { <<: *base, balance: random }
`,
      { TENANT: 'acme-tenant', HOST: 'internal-host' },
    );
    expect(config.ingress?.routes[1].match.headers).toEqual({ 'x-tenant': 'acme-tenant' });
    expect(shown.ingress.routes[1].match.headers).toEqual({ 'x-tenant': '[redacted]' });
    expect(shown.upstreams.v.endpoints).toEqual(['http://[redacted]:1']);
  });

  it('redacts by key name and by position, and a URL loses its userinfo and query', () => {
    const { shown } = load(
      `
app:
  command: [node, app.js]
  env: { PORT: "3000", DB_URL: "postgres://user:pw@db:5432/x?sslmode=require" }
  ready: { url: "http://127.0.0.1:3000/ready?key=abc" }
egress:
  auth: { user: app, password: hunter2 }
  routes:
    - { match: { host: a.internal, headers: { authorization: "Bearer t" } }, headers: { request: { add: { x-from: sidecar } } } }
`,
      {},
    );
    expect(shown.app.env).toEqual({ PORT: '[redacted]', DB_URL: '[redacted]' });
    expect(shown.app.command).toEqual(['node', 'app.js']);
    expect(shown.app.ready.url).toBe('http://127.0.0.1:3000/ready?[redacted]');
    expect(shown.egress.auth).toEqual({ user: 'app', password: '[redacted]' });
    expect(shown.egress.routes[0].match.headers.authorization).toBe('[redacted]');
    expect(shown.egress.routes[0].headers.request.add['x-from']).toBe('[redacted]');
    expect(shownUrl('https://u:p@h:1/p?q=1#f')).toBe('https://[redacted]@h:1/p?[redacted]#f');
    expect(shownUrl('not a url ?x')).toBe('not a url ?x');
  });

  it('blanks a secret that a config error quotes, JSON-escaped or not', () => {
    const text = errors(
      `
log: { level: "\${LEVEL}" }
upstreams:
  a: { endpoints: ["http://127.0.0.1:1"], balance: "\${BALANCE}", connections: "\${PASSWORD_LIKE}" }
egress: { auth: { user: app, password: 12 } }
`,
      { LEVEL: 'ab"cd\\\\ef', BALANCE: 'sk_live_abcdef', PASSWORD_LIKE: 'pw-0123' },
    );
    expect(text).toContain('log.level: must be one of');
    expect(text).toContain('upstreams.a.balance');
    expect(text).toContain('egress.auth.password');
    for (const secret of ['ab\\"cd', 'sk_live_abcdef', 'pw-0123', 'got 12']) expect(text).not.toContain(secret);
    expect(text.match(/\[redacted\]/g)?.length).toBeGreaterThanOrEqual(4);
  });

  it('does not blank a short ${VAR} value inside other text, only where it stands', () => {
    const { secrets, shown } = load('workers: ${WORKERS}\nadmin: { listen: "127.0.0.1:9901" }\n', { WORKERS: '2' });
    expect(shown.workers).toBe('[redacted]');
    expect(secrets.text('must have at least 2 items')).toBe('must have at least 2 items');
  });
});

/**
 * A duration needs a unit (issue 23): `timeout: 15` used to mean 15 ms without
 * a word. Now every key the schema types as a duration refuses a bare number
 * and says what to write, with file, line and column, the way Envoy and Caddy
 * refuse one. 0 is 0 in any unit and stays allowed; sizes keep bare numbers
 * as bytes.
 */
import { describe, expect, it } from 'vitest';
import { formatConfigError, loadConfigText } from '../src/config/load.ts';

const FILE = 'test/sidecar.yaml';

function errorsOf(yaml: string, env: NodeJS.ProcessEnv = {}): string[] {
  const result = loadConfigText(yaml, FILE, env);
  return result.ok ? ['ok'] : result.errors.map(formatConfigError);
}

const ROUTE = `upstreams:
  app: { endpoints: [http://127.0.0.1:3000] }
ingress:
  routes:
    - match: { path: / }
      upstream: app
`;

describe('durations need a unit', () => {
  it('a bare number is an error that suggests seconds and milliseconds', () => {
    expect(errorsOf(`${ROUTE}      timeout: 15\n`)).toEqual([
      `${FILE}:7:16 ingress.routes[0].timeout: a duration needs a unit: write 15s or 15ms`,
    ]);
  });

  it('also quoted, fractional, from ${VAR}, and in every place a duration goes', () => {
    const yaml = [
      'upstreams:',
      '  app:',
      '    endpoints: [http://127.0.0.1:3000]',
      '    connectTimeout: "2"',
      '    breaker: { window: 1.5 }',
      'ingress:',
      '  headersTimeout: ${HEAD}',
      '  routes:',
      '    - { match: { path: / }, upstream: app, retry: { attempts: 2, backoff: { base: 25 } } }',
    ].join('\n');
    expect(errorsOf(yaml, { HEAD: '10' })).toEqual([
      `${FILE}:4:21 upstreams.app.connectTimeout: a duration needs a unit: write 2s or 2ms`,
      `${FILE}:5:24 upstreams.app.breaker.window: a duration needs a unit: write 1.5s or 1.5ms`,
      // The value came from ${HEAD}: a substituted value is never echoed, even in a config error (admin-secrets).
      `${FILE}:7:19 ingress.headersTimeout: a duration needs a unit: write [redacted]s or [redacted]ms`,
      `${FILE}:9:83 ingress.routes[0].retry.backoff.base: a duration needs a unit: write 25s or 25ms`,
    ]);
  });

  it('0 needs no unit; units still work; a size may stay a bare number of bytes', () => {
    const result = loadConfigText(
      `${ROUTE}      timeout: 1.5s\n      idleTimeout: 0\n      maxBody: 512\n      retry: { attempts: 2, perTryTimeout: 250ms, backoff: { base: "0", max: 1m } }\n`,
      FILE,
      {},
    );
    if (!result.ok) throw new Error(result.errors.map(formatConfigError).join('\n'));
    const route = result.config.ingress?.routes[0];
    expect(route).toMatchObject({ timeout: 1500, idleTimeout: 0, maxBody: 512 });
    expect(route?.retry).toMatchObject({ perTryTimeout: 250, backoff: { base: 0, max: 60_000 } });
  });

  it('the defaults are unchanged', () => {
    const result = loadConfigText(`${ROUTE}`, FILE, {});
    if (!result.ok) throw new Error(result.errors.map(formatConfigError).join('\n'));
    expect(result.config.ingress).toMatchObject({ headersTimeout: 10_000, requestTimeout: 300_000, keepAliveTimeout: 65_000 });
    expect(result.config.upstreams.app).toMatchObject({ connectTimeout: 2_000, idleTimeout: 4_000 });
  });
});

/** The supervised app's environment: what it inherits, what is injected, what app.env overrides. */
import { describe, expect, it } from 'vitest';
import { appEnvironment } from '../src/app/supervisor.ts';
import type { AppConfig } from '../src/config/schema.ts';

const app = (overrides: Partial<AppConfig> = {}): AppConfig => ({ command: ['node', 'app.js'], env: {}, ...overrides }) as AppConfig;

describe('appEnvironment', () => {
  it('injects the proxy variables when egress listens, over inherited ones', () => {
    const env = appEnvironment(app(), '127.0.0.1:15001', { PATH: '/bin', HTTP_PROXY: 'http://elsewhere:1' });
    expect(env).toMatchObject({ PATH: '/bin', HTTP_PROXY: 'http://127.0.0.1:15001', https_proxy: 'http://127.0.0.1:15001', NO_PROXY: 'localhost,127.0.0.1,::1', NODE_USE_ENV_PROXY: '1' });
  });

  it('keeps the sidecar\'s compile cache to itself, unless app.env sets one', () => {
    const inherited = { PATH: '/bin', NODE_COMPILE_CACHE: '/opt/sidecar/.compile-cache' };
    expect(appEnvironment(app(), undefined, inherited).NODE_COMPILE_CACHE).toBeUndefined();
    expect(appEnvironment(app({ env: { NODE_COMPILE_CACHE: '/app/.cache' } }), undefined, inherited).NODE_COMPILE_CACHE).toBe('/app/.cache');
    expect(inherited.NODE_COMPILE_CACHE).toBe('/opt/sidecar/.compile-cache'); // the sidecar's own environment is untouched
  });

  it('injects a proxy URL the app can use whatever the egress listen address looks like', () => {
    // A wildcard or missing host is where egress listens, not where to reach it: 127.0.0.1 reaches
    // `::` too (Node binds it dual-stack), and every client parses an IPv4 proxy URL.
    const cases: Record<string, string> = {
      ':15001': 'http://127.0.0.1:15001',
      '0.0.0.0:15001': 'http://127.0.0.1:15001',
      '[::]:15001': 'http://127.0.0.1:15001',
      '[0:0::0]:15001': 'http://127.0.0.1:15001',
      '[::1]:15001': 'http://[::1]:15001',
      '127.0.0.1:15001': 'http://127.0.0.1:15001',
      'localhost:15001': 'http://localhost:15001',
    };
    for (const [listen, expected] of Object.entries(cases)) {
      const env = appEnvironment(app(), listen, {});
      expect(env.HTTP_PROXY, listen).toBe(expected);
      expect(env.https_proxy, listen).toBe(expected);
      const url = new URL(env.HTTP_PROXY!);
      expect(url.port, listen).toBe('15001');
    }
  });
});

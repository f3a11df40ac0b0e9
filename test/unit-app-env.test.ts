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
});

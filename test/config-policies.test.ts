/**
 * `compress` and `rateLimit` in the config (issue 19): the documented
 * defaults fill in, and every mistake is an error at its key path, found
 * when the config loads rather than at the first request.
 */
import { describe, expect, it } from 'vitest';
import { loadConfigText } from '../src/config/load.ts';

function load(route: string, listener = '') {
  const text = `upstreams:
  app: { endpoints: [http://127.0.0.1:3000] }
ingress:
  listen: 127.0.0.1:0
${listener}  routes:
    - { match: { path: / }, upstream: app, ${route} }
`;
  return loadConfigText(text, '/tmp/sidecar-policies.yaml');
}

function errorsOf(route: string, listener = ''): Array<{ path: string; message: string }> {
  const result = load(route, listener);
  return result.ok ? [] : result.errors;
}

describe('compress and rateLimit in the config', () => {
  it('fills in the documented defaults', () => {
    const result = load('compress: {}, rateLimit: { requests: 100 }');
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const route = result.config.ingress!.routes[0];
    expect(route.compress).toMatchObject({ algorithms: ['br', 'gzip'], levels: { gzip: 5, br: 4, zstd: 3 }, minLength: 1024 });
    expect(route.compress && route.compress.types).toContain('application/json');
    expect(route.rateLimit).toEqual({ requests: 100, per: 1000, key: 'route', maxKeys: 10_000, mode: 'enforce', headers: false });
  });

  it('takes a listener compress, and false on a route', () => {
    const result = load('compress: false', '  compress: { algorithms: [gzip] }\n');
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config.ingress!.compress?.algorithms).toEqual(['gzip']);
    expect(result.config.ingress!.routes[0].compress).toBe(false);
  });

  for (const [what, route, path, message] of [
    ['an unknown coding', 'compress: { algorithms: [deflate] }', 'ingress.routes[0].compress.algorithms[0]', /br|gzip|zstd/],
    ['brotli quality 12', 'compress: { levels: { br: 12 } }', 'ingress.routes[0].compress.levels.br', /12|11/],
    ['a type that is no media type', 'compress: { types: ["text html"] }', 'ingress.routes[0].compress.types[0]', /media type/],
    ['compress: true', 'compress: true', 'ingress.routes[0].compress', /./],
    ['no requests', 'rateLimit: { per: 1s }', 'ingress.routes[0].rateLimit.requests', /./],
    ['zero requests', 'rateLimit: { requests: 0 }', 'ingress.routes[0].rateLimit.requests', /./],
    ['per: 0', 'rateLimit: { requests: 1, per: 0 }', 'ingress.routes[0].rateLimit.per', /longer than 0/],
    ['per without a unit', 'rateLimit: { requests: 1, per: 5 }', 'ingress.routes[0].rateLimit.per', /unit/],
    ['an unknown key kind', 'rateLimit: { requests: 1, key: ip }', 'ingress.routes[0].rateLimit.key', /client-ip/],
    ['a header key with no name', 'rateLimit: { requests: 1, key: "header:" }', 'ingress.routes[0].rateLimit.key', /header:NAME/],
    ['an unknown mode', 'rateLimit: { requests: 1, mode: dry-run }', 'ingress.routes[0].rateLimit.mode', /enforce|shadow/],
    ['a typo', 'rateLimit: { requests: 1, brust: 5 }', 'ingress.routes[0].rateLimit.brust', /./],
  ] as const) {
    it(`refuses ${what}`, () => {
      const errors = errorsOf(route);
      expect(errors.length).toBeGreaterThan(0);
      expect(errors[0].path).toBe(path);
      expect(errors[0].message).toMatch(message);
    });
  }
});

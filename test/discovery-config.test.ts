/**
 * `upstreams.NAME.discovery.dns` in the config: exactly one of `endpoints`
 * and `discovery`, a DNS name, a port, and DNS servers node:dns can use;
 * the errors name the key and say what to write.
 */
import { describe, expect, it } from 'vitest';
import { formatConfigError, loadConfigText } from '../src/config/load.ts';

const FILE = 'test/sidecar.yaml';

function errorsOf(upstream: string): string[] {
  const result = loadConfigText(`upstreams:\n  pay: ${upstream}\n`, FILE, {});
  return result.ok ? ['ok'] : result.errors.map(formatConfigError);
}

describe('discovery.dns in the config', () => {
  it('takes a name and port, with defaults for scheme, every and servers', () => {
    const result = loadConfigText('upstreams:\n  pay: { discovery: { dns: { name: payments.default.svc.cluster.local, port: 7001 } } }\n', FILE, {});
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config.upstreams.pay.discovery?.dns).toEqual({ name: 'payments.default.svc.cluster.local', port: 7001, scheme: 'http', every: 5_000, servers: [] });
    expect(result.config.upstreams.pay.endpoints).toBeUndefined();
  });

  it('wants exactly one of endpoints and discovery', () => {
    expect(errorsOf('{ endpoints: [http://127.0.0.1:1], discovery: { dns: { name: a.test, port: 1 } } }')).toEqual([
      `${FILE}:2:43 upstreams.pay.discovery: give either endpoints or discovery (exactly one of the two)`,
    ]);
    expect(errorsOf('{ balance: random }')).toEqual([`${FILE}:2:3 upstreams.pay.endpoints: required key is missing`]);
  });

  it('refuses a DNS server node:dns cannot use, a bad name and a bad port', () => {
    expect(errorsOf('{ discovery: { dns: { name: a.test, port: 1, servers: [dns.example.com] } } }').join('\n')).toContain(
      'upstreams.pay.discovery.dns.servers[0]: not a DNS server address',
    );
    expect(errorsOf('{ discovery: { dns: { name: "a b", port: 1 } } }').join('\n')).toContain('upstreams.pay.discovery.dns.name: not a DNS name');
    expect(errorsOf('{ discovery: { dns: { name: a.test, port: 0 } } }').join('\n')).toContain('upstreams.pay.discovery.dns.port');
    expect(errorsOf('{ discovery: { dns: { name: a.test, port: 1, every: 5 } } }').join('\n')).toContain('upstreams.pay.discovery.dns.every');
  });
});

import { describe, expect, it } from 'vitest';
import { compileTrustedProxies, isTrustedPeer, parseProxyEntry } from '../src/net/trusted-proxies.ts';
import { loadConfigText } from '../src/config/load.ts';

describe('trustedProxies', () => {
  it('compares addresses in canonical form, IPv4-mapped IPv6 peers included', () => {
    const list = compileTrustedProxies(['10.0.0.0/8', '192.168.1.7', 'fd00::/8', '[::1]']);
    for (const peer of ['10.1.2.3', '::ffff:10.1.2.3', '::FFFF:a01:203', '192.168.1.7', '::ffff:192.168.1.7', 'fd12::1', 'FD12:0:0::1', '::1', '0:0:0:0:0:0:0:1']) {
      expect(isTrustedPeer(list, peer), peer).toBe(true);
    }
    for (const peer of ['11.0.0.1', '::ffff:11.0.0.1', '192.168.1.8', 'fe80::1', '127.0.0.1', undefined]) {
      expect(isTrustedPeer(list, peer), String(peer)).toBe(false);
    }
  });

  it('an IPv4-mapped entry is the IPv4 address it carries', () => {
    expect(parseProxyEntry('::ffff:127.0.0.1')).toEqual({ address: '127.0.0.1', prefix: 32, family: 'ipv4' });
    expect(isTrustedPeer(compileTrustedProxies(['::ffff:127.0.0.1']), '127.0.0.1')).toBe(true);
    expect(isTrustedPeer(compileTrustedProxies(['::ffff:10.0.0.0/104']), '10.9.9.9')).toBe(true);
  });

  it('trusts nobody by default', () => {
    expect(compileTrustedProxies([])).toBeUndefined();
    expect(isTrustedPeer(undefined, '127.0.0.1')).toBe(false);
  });

  it('refuses what is not an address or a CIDR block, with its place in the file', () => {
    for (const bad of ['10.0.0.0/33', 'fd00::/129', 'localhost', '10.0.0', '10.0.0.0/8/8']) expect(parseProxyEntry(bad), bad).toBeUndefined();
    const result = loadConfigText('ingress:\n  listen: 127.0.0.1:0\n  trustedProxies: [10.0.0.0/8, proxy.local]\n', '/tmp/x.yaml');
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]).toMatchObject({ path: 'ingress.trustedProxies[1]', line: 3 });
    expect(result.errors[0].message).toMatch(/not an IP address or CIDR block/);
  });
});

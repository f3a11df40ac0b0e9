/**
 * The client address a rate limit keys on (net/trusted-proxies.ts
 * clientAddress): the peer, unless a trusted proxy vouches for someone in
 * X-Forwarded-For; then the nearest hop that is not a trusted proxy.
 */
import { describe, expect, it } from 'vitest';
import { clientAddress, compileTrustedProxies } from '../src/net/trusted-proxies.ts';

const trusted = compileTrustedProxies(['10.0.0.0/8', 'fd00::/8']);

describe('clientAddress', () => {
  it('is the peer when nobody is trusted, whatever X-Forwarded-For says', () => {
    expect(clientAddress(undefined, '192.0.2.7', '198.51.100.1')).toBe('192.0.2.7');
    expect(clientAddress(trusted, '192.0.2.7', '198.51.100.1')).toBe('192.0.2.7');
  });

  it('is the peer in IPv4 form when it came mapped into IPv6', () => {
    expect(clientAddress(undefined, '::ffff:192.0.2.7', undefined)).toBe('192.0.2.7');
  });

  it('is the nearest untrusted hop behind trusted proxies, never what the client wrote further left', () => {
    expect(clientAddress(trusted, '10.0.0.1', '198.51.100.1')).toBe('198.51.100.1');
    expect(clientAddress(trusted, '10.0.0.1', '203.0.113.9, 198.51.100.1, 10.0.0.2')).toBe('198.51.100.1');
    expect(clientAddress(trusted, '::ffff:10.0.0.1', ['203.0.113.9', '198.51.100.1'])).toBe('198.51.100.1');
  });

  it('is the left-most hop when every hop is a trusted proxy', () => {
    expect(clientAddress(trusted, '10.0.0.1', '10.0.0.3, 10.0.0.2')).toBe('10.0.0.3');
  });

  it('stops at an entry that is no address, at the last hop known', () => {
    expect(clientAddress(trusted, '10.0.0.1', 'unknown')).toBe('10.0.0.1');
    expect(clientAddress(trusted, '10.0.0.1', 'junk, 10.0.0.2')).toBe('10.0.0.2');
  });

  it('reads hops with ports and brackets, in canonical form', () => {
    expect(clientAddress(trusted, '10.0.0.1', '198.51.100.1:4711')).toBe('198.51.100.1');
    expect(clientAddress(trusted, 'fd00::1', '[2001:db8:0:0::1]:443')).toBe('2001:db8::1');
  });

  it('is the peer when there is no X-Forwarded-For', () => {
    expect(clientAddress(trusted, '10.0.0.1', undefined)).toBe('10.0.0.1');
  });
});

/**
 * The loop guard compares addresses in canonical form: an IPv4-mapped IPv6
 * literal (`[::ffff:127.0.0.1]`, `[::ffff:7f00:1]`), a non-canonical IPv6
 * (`[0:0::1]`) or an IPv4 shorthand a resolver accepts (`127.1`,
 * `2130706433`, `0x7f.0.0.1`) names the same listener as its plain spelling,
 * in an absolute-form URL, a CONNECT authority and a Host header alike.
 * Before, `POST /reload` on the admin port went through egress with a mapped
 * IPv6 literal. Raw sockets: the bytes of the request line matter here.
 * Metadata spellings are checked by parsing only: a test must not send a
 * packet off loopback even when the guard regresses.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { addressProblem } from '../src/egress/policy.ts';
import { parseAbsolute, parseAuthority } from '../src/egress/target.ts';
import { rawExchange } from './helpers/raw.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

/** Spellings of 127.0.0.1 (the admin and egress listeners' address). */
const IPV4_SPELLINGS = ['[::ffff:127.0.0.1]', '[::ffff:7f00:1]', '[0:0:0:0:0:ffff:7f00:0001]', '127.1', '2130706433', '0x7f.0.0.1', '0177.0.0.1'];
/** Spellings of 0.0.0.0, which reaches every local listener too (`0x` is 0.0.0.0 to the URL parser undici uses). */
const ANY_SPELLINGS = ['0x', '0', '[::ffff:0.0.0.0]'];
/** Spellings of ::1 (the ingress listener's address). */
const IPV6_SPELLINGS = ['[0:0::1]', '[0000:0000:0000:0000:0000:0000:0000:0001]', '[::0:1]'];

describe('egress loop guard: address spellings', () => {
  let sidecar: RunningSidecar;
  let proxy: number;
  let admin: number;
  let ingress: number;

  beforeAll(async () => {
    sidecar = await startSidecar(`${TEST_BASE}
ingress:
  listen: "[::1]:0"
  routes: []
egress:
  listen: 127.0.0.1:0
  routes:
    - { name: anywhere, match: { host: "*" }, allowLoopback: true }
`);
    proxy = sidecar.egressPort!;
    admin = sidecar.sidecar.adminPort!;
    ingress = sidecar.sidecar.ingressPort!;
  });
  afterAll(async () => {
    await sidecar.close();
  });

  async function successfulReloads(): Promise<number> {
    const text = await (await request(sidecar.admin('/metrics'))).body.text();
    const line = text.split('\n').find((l) => l.startsWith('sidecar_config_reloads_total{result="success"}'));
    return Number(line?.split(' ').pop() ?? 0);
  }

  const RELOAD = (host: string) => `POST /reload HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`;

  function expectLoopRefusal(answer: string, label: string): void {
    expect(answer, label).toMatch(/^HTTP\/1\.1 403 /);
    expect(answer, label).toMatch(/x-sidecar-error: destination_denied/);
    expect(answer, label).toMatch(/loop/);
    expect(answer, label).not.toMatch(/"hash"/);
  }

  it('refuses POST /reload on the admin port in absolute-form, whatever the spelling of 127.0.0.1', async () => {
    const before = await successfulReloads();
    for (const host of IPV4_SPELLINGS) {
      const target = `http://${host}:${admin}/reload`;
      const answer = await rawExchange(proxy, `POST ${target} HTTP/1.1\r\nHost: ${host}:${admin}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      expectLoopRefusal(answer, target);
    }
    expect(await successfulReloads()).toBe(before);
  });

  it('refuses a CONNECT to the admin port, and so the POST /reload inside it, whatever the spelling', async () => {
    const before = await successfulReloads();
    for (const host of IPV4_SPELLINGS) {
      const authority = `${host}:${admin}`;
      const answer = await rawExchange(proxy, `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n${RELOAD(authority)}`);
      expectLoopRefusal(answer, authority);
    }
    expect(await successfulReloads()).toBe(before);
  });

  it('refuses an origin-form request whose Host names the admin port in another spelling', async () => {
    const before = await successfulReloads();
    for (const host of [...IPV4_SPELLINGS, ...ANY_SPELLINGS]) {
      const answer = await rawExchange(proxy, RELOAD(`${host}:${admin}`));
      expectLoopRefusal(answer, host);
    }
    expect(await successfulReloads()).toBe(before);
  });

  it('refuses non-canonical spellings of ::1 aimed at its own IPv6 listener (absolute-form, CONNECT, Host)', async () => {
    for (const host of IPV6_SPELLINGS) {
      const authority = `${host}:${ingress}`;
      expectLoopRefusal(await rawExchange(proxy, `GET http://${authority}/ HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`), `absolute ${host}`);
      expectLoopRefusal(await rawExchange(proxy, `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`), `CONNECT ${host}`);
      expectLoopRefusal(await rawExchange(proxy, `GET / HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`), `Host ${host}`);
    }
  });
});

describe('egress metadata guard: address spellings (no packet leaves loopback: parsed and checked, not sent)', () => {
  const rules = { exactHost: false, loopback: false, private: false, own: () => [] };
  const SPELLINGS = ['[::ffff:169.254.169.254]', '[::ffff:a9fe:a9fe]', '0xa9fea9fe', '0xA9FEA9FE', '2852039166', '169.254.43518', '0251.0376.0251.0376'];

  it('reads every spelling of 169.254.169.254 in a CONNECT authority, a Host header and an absolute-form URL as that address', () => {
    for (const host of SPELLINGS) {
      // Before, `Host: 0xa9fea9fe` stayed a "name": the literal check skipped it, and undici's URL
      // parser then made 169.254.169.254 of it and connected there without any lookup to check.
      expect(parseAuthority(`${host}:80`)?.host, host).toBe('169.254.169.254');
      expect(parseAuthority(host, 80)?.host, host).toBe('169.254.169.254');
      expect(parseAbsolute(`http://${host}/latest/`)?.host, host).toBe('169.254.169.254');
      expect(addressProblem(host, 80, rules), host).toMatch(/metadata/);
    }
  });

  it('reads what the URL parser takes for IPv4 but ipaddr.js does not (`0x`, `1.0x`) as that address', () => {
    expect(parseAuthority('0x', 80)?.host).toBe('0.0.0.0');
    expect(parseAuthority('1.0x:80')?.host).toBe('1.0.0.0');
    expect(parseAuthority('cafe.example', 80)?.host).toBe('cafe.example');
    expect(parseAuthority('deadbeef', 80)?.host).toBe('deadbeef');
  });
});

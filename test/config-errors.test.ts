/**
 * Config errors are part of the user interface: each case pins the exact
 * "file:line:col key.path: message" a user would see for one kind of mistake.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatConfigError, loadConfigFile, loadConfigText } from '../src/config/load.ts';

/** Read as if from here: the folder exists, so the default `app.cwd: .` is valid. */
const FILE = 'test/sidecar.yaml';

/** Every formatted error for `yaml` (read as if from FILE), or ['ok']. */
function errorsOf(yaml: string, env: NodeJS.ProcessEnv = {}, file = FILE): string[] {
  const result = loadConfigText(yaml, file, env);
  return result.ok ? ['ok'] : result.errors.map(formatConfigError);
}

const UPSTREAMS = `upstreams:
  app: { endpoints: [http://127.0.0.1:3000] }
  payments: { endpoints: [http://127.0.0.1:7001] }
`;

describe('one mistake, one exact message', () => {
  const cases: Array<[name: string, yaml: string, expected: string[]]> = [
    ['YAML syntax error', 'admin:\n  listen: [127.0.0.1:9901\ningress:\n  listen: 0.0.0.0:8080\n', [
      `${FILE}:3:1: Flow sequence in block collection must be sufficiently indented and end with a ]`,
    ]],
    ['duplicate key', 'admin:\n  listen: 127.0.0.1:9901\n  listen: 127.0.0.1:9902\n', [
      `${FILE}:3:3 admin.listen: duplicate key "listen"`,
    ]],
    ['unknown key (typo)', `${UPSTREAMS}ingress:\n  routes:\n    - match: { path: / }\n      upstrem: app\n`, [
      `${FILE}:7:7 ingress.routes[0].upstrem: unknown key "upstrem" (did you mean "upstream"?)`,
    ]],
    ['unknown upstream', `${UPSTREAMS}ingress:\n  routes:\n    - { name: a, upstream: app }\n    - { name: b, upstream: paymets }\n`, [
      `${FILE}:7:28 ingress.routes[1].upstream: unknown upstream "paymets" (known: app, payments)`,
    ]],
    ['bad duration', `${UPSTREAMS}ingress:\n  headersTimeout: 10 seconds\n`, [
      `${FILE}:5:19 ingress.headersTimeout: not a duration: "10 seconds" (write e.g. 250ms, 2s, 1m, 1h)`,
    ]],
    ['bad size', 'ingress:\n  maxHeaderSize: 16 kilo\n', [
      `${FILE}:2:18 ingress.maxHeaderSize: not a size: "16 kilo" (write e.g. 512, 64KiB, 1MiB)`,
    ]],
    ['bad listen address', 'admin:\n  listen: localhost\n', [
      `${FILE}:2:11 admin.listen: not a listen address (write host:port, e.g. 127.0.0.1:8080 or [::1]:8080)`,
    ]],
    ['missing required endpoints', 'upstreams:\n  app:\n    balance: random\n', [
      `${FILE}:2:3 upstreams.app.endpoints: required key is missing`,
    ]],
    ['wrong types', 'upstreams:\n  app:\n    endpoints: http://127.0.0.1:3000\n    connections: many\nlog:\n  access: yes\n', [
      `${FILE}:3:16 upstreams.app.endpoints: expected a list, got "http://127.0.0.1:3000"`,
      `${FILE}:4:18 upstreams.app.connections: expected a number, got "many"`,
      `${FILE}:6:11 log.access: expected true or false, got "yes"`,
    ]],
    ['undefined env var', 'admin:\n  listen: 127.0.0.1:${ADMIN_PORT}\n', [
      `${FILE}:2:11 admin.listen: environment variable ADMIN_PORT is not set (write \${ADMIN_PORT:-default} to give a default)`,
    ]],
    ['route with neither upstream nor static', `${UPSTREAMS}ingress:\n  routes:\n    - match: { path: /x/ }\n`, [
      `${FILE}:6:7 ingress.routes[0]: route needs an upstream or a static block`,
    ]],
    ['route with both upstream and static', `${UPSTREAMS}ingress:\n  routes:\n    - upstream: app\n      static: { root: . }\n`, [
      `${FILE}:7:7 ingress.routes[0].static: a route has either upstream or static, not both`,
    ]],
    ['port conflict', 'admin: { listen: 127.0.0.1:8080 }\ningress: { listen: 0.0.0.0:8080 }\negress: { listen: "[::1]:8080" }\n', [
      `${FILE}:2:20 ingress.listen: port 8080 is also bound by admin.listen (127.0.0.1:8080)`,
    ]],
    ['stripPrefix that is not a prefix of match.path', `${UPSTREAMS}ingress:\n  routes:\n    - match: { path: /api/ }\n      upstream: app\n      rewrite: { stripPrefix: /v1 }\n`, [
      `${FILE}:8:31 ingress.routes[0].rewrite.stripPrefix: stripPrefix "/v1" can never apply: match.path "/api/" does not start with it`,
    ]],
    ['duplicate route names', `${UPSTREAMS}egress:\n  routes:\n    - { name: out, upstream: app }\n    - { name: out, upstream: payments }\n`, [
      `${FILE}:7:15 egress.routes[1].name: duplicate route name "out" (also egress.routes[0])`,
    ]],
    ['http and https endpoints in one upstream', 'upstreams:\n  app:\n    endpoints:\n      - http://127.0.0.1:80\n      - https://127.0.0.2:443\n', [
      `${FILE}:5:9 upstreams.app.endpoints[1]: mixes http:// and https:// endpoints (one upstream speaks one protocol; split it in two)`,
    ]],
    ['app.ready.url that is not http', 'app:\n  command: [node, server.js]\n  ready: { url: "ftp://127.0.0.1/" }\n', [
      `${FILE}:3:17 app.ready.url: must be an http:// or https:// URL, got "ftp://127.0.0.1/"`,
    ]],
    ['a list where the config map belongs', '- admin\n- ingress\n', [`${FILE}:1:1: expected a map, got a list`]],
    ['an empty file', '# nothing yet\n', [`${FILE}: the config file is empty`]],
  ];
  it.each(cases)('%s', (_name, yaml, expected) => {
    expect(errorsOf(yaml)).toEqual(expected);
  });
});

describe('all errors at once', () => {
  it('reports every mistake of a file, sorted by line then column', () => {
    const yaml = [
      'admin:',
      '  listen: nope', // 2
      'upstreams:',
      '  app:',
      '    endpoints: []', // 5
      '    balance: fastest', // 6
      'ingress:',
      '  requestTimeout: ${REQ_TIMEOUT}', // 8
      '  routes:',
      '    - match: { path: api }', // 10
      '      timeout: true', // 11
      '      retry: { attempts: 2, on: [reset, 404] }', // 12
      '      colour: blue', // 13
    ].join('\n');
    expect(errorsOf(yaml)).toEqual([
      `${FILE}:2:11 admin.listen: not a listen address (write host:port, e.g. 127.0.0.1:8080 or [::1]:8080)`,
      `${FILE}:5:5 upstreams.app.endpoints: must not be empty`,
      `${FILE}:6:14 upstreams.app.balance: must be one of: round-robin, least-request, random, got "fastest"`,
      `${FILE}:8:19 ingress.requestTimeout: environment variable REQ_TIMEOUT is not set (write \${REQ_TIMEOUT:-default} to give a default)`,
      `${FILE}:10:22 ingress.routes[0].match.path: must start with /`,
      `${FILE}:11:16 ingress.routes[0].timeout: expected a string or a number, got true`,
      `${FILE}:12:41 ingress.routes[0].retry.on[1]: must be >= 500`,
      `${FILE}:13:7 ingress.routes[0].colour: unknown key "colour" (allowed: match, name, upstream, rewrite, headers, timeout, idleTimeout, retry, maxBody, compress, rateLimit, static, websocket)`,
    ]);
  });
});

describe('files', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sidecar-config-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('names a missing static root and an unreadable CA file by absolute path', () => {
    const file = join(dir, 'sidecar.yaml');
    const yaml = `upstreams:\n  app: { endpoints: [https://app.test:443], tls: { ca: ./ca.pem } }\ningress:\n  routes:\n    - static: { root: ./public }\n`;
    expect(errorsOf(yaml, {}, file)).toEqual([
      `${file}:2:56 upstreams.app.tls.ca: cannot read CA file ${join(dir, 'ca.pem')}: it does not exist`,
      `${file}:5:23 ingress.routes[0].static.root: static root ${join(dir, 'public')} does not exist`,
    ]);
    writeFileSync(join(dir, 'public'), 'a file, not a folder');
    writeFileSync(join(dir, 'ca.pem'), 'not a certificate');
    expect(errorsOf(yaml, {}, file)).toEqual([
      `${file}:2:56 upstreams.app.tls.ca: CA file ${join(dir, 'ca.pem')} holds no PEM certificate`,
      `${file}:5:23 ingress.routes[0].static.root: static root ${join(dir, 'public')} is not a directory`,
    ]);
  });

  it('turns a missing file or a directory into an error, never an exception', async () => {
    const missing = join(dir, 'nope.yaml');
    expect(await loadConfigFile(missing)).toEqual({ ok: false, errors: [{ file: missing, path: '', message: 'cannot read config file: it does not exist' }] });
    const result = await loadConfigFile(dir);
    expect(result.ok ? [] : result.errors.map(formatConfigError)).toEqual([`${dir}: is a directory, not a config file`]);
  });

  it('resolves relative paths against the config folder, returns them absolute, and keeps a symlinked path as given', async () => {
    mkdirSync(join(dir, 'site', 'www'), { recursive: true });
    writeFileSync(join(dir, 'site', 'sidecar.yaml'), 'app:\n  command: [node, app.js]\n  cwd: www\ningress:\n  routes:\n    - static: { root: ./www }\n');
    symlinkSync('sidecar.yaml', join(dir, 'site', 'link.yaml'));
    const direct = await loadConfigFile(join(dir, 'site', 'sidecar.yaml'));
    if (!direct.ok) throw new Error(direct.errors.map(formatConfigError).join('\n'));
    expect(direct.config.ingress?.routes[0].static?.root).toBe(join(dir, 'site', 'www'));
    expect(direct.config.app?.cwd).toBe(join(dir, 'site', 'www'));
    const viaLink = await loadConfigFile(join(dir, 'site', 'link.yaml'));
    expect(viaLink.ok && viaLink.source).toBe(join(dir, 'site', 'link.yaml'));
  });
});

describe('good configs', () => {
  it('loads the full example of SPEC.md', async () => {
    const result = await loadConfigFile('test/fixtures/spec-example.yaml');
    if (!result.ok) throw new Error(result.errors.map(formatConfigError).join('\n'));
    expect(result.source).toBe(resolve('test/fixtures/spec-example.yaml'));
    expect(result.hash).toMatch(/^[0-9a-f]{64}$/);
    const { config } = result;
    expect(config.upstreams.payments.tls?.ca).toBe(resolve('test/fixtures/ca.pem'));
    expect(config.ingress?.routes[0].static?.root).toBe(resolve('test/fixtures/public'));
    expect(config.ingress?.routes[1].retry).toMatchObject({ attempts: 3, perTryTimeout: 5_000, bufferBody: 65_536 });
    expect(config.egress?.routes.map((route) => route.upstream)).toEqual(['payments', undefined]);
  });

  it('substitutes ${VAR} and ${VAR:-default}, keeps $${VAR} literal, and types values by the schema', () => {
    const yaml = [
      'admin: { listen: "${HOST:-127.0.0.1}:${ADMIN_PORT}" }',
      'app:',
      '  command: [node, "$${NOT_EXPANDED}"]',
      '  env:',
      '    PORT: ${APP_PORT}', // stays the string "3000": app.env wants strings
      '  proxyEnv: ${PROXY_ENV:-false}',
      'ingress:',
      '  maxConnections: "${MAX_CONN}"',
    ].join('\n');
    const result = loadConfigText(yaml, FILE, { ADMIN_PORT: '9902', APP_PORT: '3000', HOST: '', MAX_CONN: '64' });
    if (!result.ok) throw new Error(result.errors.map(formatConfigError).join('\n'));
    expect(result.config.admin.listen).toBe('127.0.0.1:9902');
    expect(result.config.app?.command).toEqual(['node', '${NOT_EXPANDED}']);
    expect(result.config.app?.env).toEqual({ PORT: '3000' });
    expect(result.config.app?.proxyEnv).toBe(false);
    expect(result.config.ingress?.maxConnections).toBe(64);
  });

  it('freezes the config deeply', () => {
    const result = loadConfigText(`${UPSTREAMS}egress:\n  routes:\n    - { upstream: app, retry: { attempts: 2 } }\n`, FILE, {});
    if (!result.ok) throw new Error(result.errors.map(formatConfigError).join('\n'));
    const retry = result.config.egress?.routes[0].retry;
    expect(Object.isFrozen(result.config)).toBe(true);
    expect(Object.isFrozen(result.config.upstreams.app.endpoints)).toBe(true);
    expect(Object.isFrozen(retry?.backoff)).toBe(true);
    expect(() => {
      (retry as { attempts: number }).attempts = 9;
    }).toThrow(TypeError);
  });

  it('hashes the raw bytes: same text, same hash; any change, a new hash', () => {
    const hashOf = (text: string) => {
      const result = loadConfigText(text, FILE, {});
      return result.ok ? result.hash : result.errors.map(formatConfigError).join('\n');
    };
    const base = 'admin: { listen: 127.0.0.1:9901 }\n';
    expect(hashOf(base)).toBe(hashOf(base));
    expect(hashOf(base)).not.toBe(hashOf(`${base}# a comment\n`));
  });
});

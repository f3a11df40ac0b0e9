/**
 * Every config error in one run (issue 23): schema errors used to hide the
 * semantic ones (unknown upstreams, missing static roots) until they were
 * fixed, so a newcomer met their mistakes one restart at a time. Now the
 * semantic checks run on the part of the config the schema accepted, and a
 * finding that only follows from a refused value is not repeated.
 */
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatConfigError, loadConfigText } from '../src/config/load.ts';
import { spawnSidecar, writeConfig } from './helpers/process.ts';

const FILE = 'test/sidecar.yaml';

function errorsOf(yaml: string): string[] {
  const result = loadConfigText(yaml, FILE, {});
  return result.ok ? ['ok'] : result.errors.map(formatConfigError);
}

describe('config errors of every kind in one pass', () => {
  it('check: a schema error, an unknown upstream and a missing static root, all at once, with file:line:col and key path', async () => {
    const file = writeConfig(
      [
        'upstreams:',
        '  app: { endpoints: [http://127.0.0.1:3000] }',
        'log:',
        '  level: loud',
        'ingress:',
        '  listen: 127.0.0.1:0',
        '  routes:',
        '    - { match: { path: /static/ }, static: { root: ./no-such-folder } }',
        '    - { match: { path: / }, upstream: ap }',
        '',
      ].join('\n'),
    );
    const proc = await spawnSidecar(['check', '--config', file], { waitListening: false });
    expect(await proc.exited).toBe(1);
    const lines = proc.stderr().trim().split('\n');
    expect(lines).toEqual([
      `${file}:4:10 log.level: must be one of: trace, debug, info, warn, error, silent, got "loud"`,
      `${file}:8:52 ingress.routes[0].static.root: static root ${join(dirname(file), 'no-such-folder')} does not exist`,
      `${file}:9:39 ingress.routes[1].upstream: unknown upstream "ap" (known: app)`,
      `sidecar: ${file}: 3 errors, not started`,
    ]);
  });

  it('a route with its own schema error is still checked for the rest', () => {
    const yaml = 'ingress:\n  routes:\n    - { match: { path: / }, upstream: nope, timeout: soon }\n';
    expect(errorsOf(yaml)).toEqual([
      `${FILE}:3:39 ingress.routes[0].upstream: unknown upstream "nope" (no upstreams are defined)`,
      `${FILE}:3:54 ingress.routes[0].timeout: not a duration: "soon" (write e.g. 250ms, 2s, 1m, 1h)`,
    ]);
  });

  it('an upstream with an error of its own is still a known name; a refused item keeps the indices of the others', () => {
    const yaml = [
      'upstreams:',
      '  app: { endpoints: [ftp://127.0.0.1:3000] }',
      'egress:',
      '  routes:',
      '    - { match: { host: a.internal }, upstream: app }',
      '    - not a route',
      '    - { match: { host: c.internal }, upstream: other }',
      '',
    ].join('\n');
    expect(errorsOf(yaml)).toEqual([
      `${FILE}:2:22 upstreams.app.endpoints[0]: not an endpoint URL (write http://host:port or https://host:port, without a path)`,
      `${FILE}:6:7 egress.routes[1]: expected a map, got "not a route"`,
      `${FILE}:7:48 egress.routes[2].upstream: unknown upstream "other" (known: app)`,
    ]);
  });

  it('says nothing more about what only follows from a refused value', () => {
    // Without `upstrem`, the route has neither upstream nor static; without a valid ingress.listen the
    // default 0.0.0.0:8080 would seem to clash with egress; an unset ${ROOT} leaves no root to look for.
    const yaml = [
      'ingress:',
      '  listen: 8080',
      '  routes:',
      '    - { match: { path: / }, upstrem: app }',
      '    - { match: { path: /s/ }, static: { root: "${ROOT}" } }',
      'egress:',
      '  listen: 127.0.0.1:8080',
      '',
    ].join('\n');
    expect(errorsOf(yaml)).toEqual([
      `${FILE}:2:11 ingress.listen: expected a string, got 8080`,
      `${FILE}:4:29 ingress.routes[0].upstrem: unknown key "upstrem" (did you mean "upstream"?)`,
      `${FILE}:5:47 ingress.routes[1].static.root: environment variable ROOT is not set (write \${ROOT:-default} to give a default)`,
    ]);
  });
});

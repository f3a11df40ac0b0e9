/**
 * `schema` writes a usable file (issue 23): `npm start -- schema > file` got
 * npm's banner in the file. `sidecar schema --out FILE` writes the JSON
 * Schema itself, and `npm start --silent -- schema > file` (documented) keeps
 * npm quiet. Either way the file parses and describes the config file.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, ROOT } from './helpers/process.ts';

interface JsonSchema {
  $schema?: string;
  type?: string;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  pattern?: string;
}

/** The schema of the config file: strict objects, the documented keys, durations that need a unit. */
function expectConfigSchema(schema: JsonSchema): void {
  expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
  expect(schema.type).toBe('object');
  expect(schema.additionalProperties).toBe(false);
  expect(Object.keys(schema.properties ?? {})).toEqual(expect.arrayContaining(['admin', 'log', 'app', 'upstreams', 'ingress', 'egress']));
  const route = schema.properties?.ingress.properties?.routes.items;
  expect(route?.additionalProperties).toBe(false);
  expect(Object.keys(route?.properties ?? {})).toEqual(expect.arrayContaining(['match', 'upstream', 'static', 'timeout', 'retry']));
  const timeout = new RegExp(route?.properties?.timeout.anyOf?.[0].pattern ?? '$^');
  expect(['15s', '250ms', '1.5m', '0'].every((value) => timeout.test(value))).toBe(true);
  expect(['15', 'soon'].some((value) => timeout.test(value))).toBe(false);
}

describe('schema', () => {
  it('--out FILE writes the JSON Schema of the config file, relative to the current folder', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sidecar-schema-'));
    const result = spawnSync(process.execPath, [CLI, 'schema', '--out', 'sidecar.schema.json'], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
    expect(result.status).toBe(0);
    expect(result.stdout).toBe('');
    expectConfigSchema(JSON.parse(readFileSync(join(dir, 'sidecar.schema.json'), 'utf8')) as JsonSchema);
  });

  it('npm start --silent -- schema > file: the file is only the JSON', () => {
    const result = spawnSync('npm', ['start', '--silent', '--', 'schema'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(result.status).toBe(0);
    expectConfigSchema(JSON.parse(result.stdout) as JsonSchema);
  });

  it('npm start -- schema --out FILE from another folder writes FILE there', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sidecar-schema-'));
    const result = spawnSync('npm', ['start', '--prefix', ROOT, '--', 'schema', '--out', 'x.schema.json'], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    expect(result.status).toBe(0);
    expectConfigSchema(JSON.parse(readFileSync(join(dir, 'x.schema.json'), 'utf8')) as JsonSchema);
  });
});

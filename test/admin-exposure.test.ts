/**
 * The admin port and egress are meant for loopback: bound beyond it, the
 * sidecar still starts (as Envoy and HAProxy do) but warns once, naming the
 * listener and what guards it. (The process binds 0.0.0.0 on an ephemeral port
 * for a moment; the test talks to it over 127.0.0.1 only.)
 */
import { describe, expect, it } from 'vitest';
import { isLoopbackHost } from '../src/admin/exposure.ts';
import { spawnSidecar, writeConfig } from './helpers/process.ts';

describe('a warning for admin and egress beyond loopback', () => {
  it('warns at start for each of them bound to a wildcard address', async () => {
    const sidecar = await spawnSidecar([
      '--config',
      writeConfig(`
admin: { listen: 0.0.0.0:0 }
egress: { listen: "0.0.0.0:0", routes: [] }
`),
    ]);
    expect(await sidecar.stop()).toBe(0);
    const warnings = sidecar.lines.filter((line) => line.level === 'warn' && typeof line.listener === 'string');
    expect(warnings.map((line) => line.listener).sort()).toEqual(['admin', 'egress']);
    expect(String(warnings.find((line) => line.listener === 'admin')!.msg)).toContain('admin.token');
    expect(String(warnings.find((line) => line.listener === 'egress')!.msg)).toContain('egress.auth');
  });

  it('says nothing for loopback', async () => {
    const sidecar = await spawnSidecar(['--config', writeConfig('admin: { listen: 127.0.0.1:0 }\negress: { listen: "[::1]:0", routes: [] }\n')]);
    expect(await sidecar.stop()).toBe(0);
    expect(sidecar.lines.filter((line) => line.level === 'warn')).toEqual([]);
  });

  it('knows loopback in every spelling, and nothing else', () => {
    for (const host of ['127.0.0.1', '127.8.9.10', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost', 'LOCALHOST.']) expect(isLoopbackHost(host), host).toBe(true);
    for (const host of ['0.0.0.0', '::', '', '10.0.0.1', '::ffff:10.0.0.1', 'example.com', '128.0.0.1']) expect(isLoopbackHost(host), host).toBe(false);
  });
});

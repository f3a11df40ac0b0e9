/**
 * Issue 24: the image's build steps, run as a plain script (docker/build-check.sh:
 * npm ci --omit=dev, the compile cache warmed as the image's non-root user, the
 * start as that user, the HEALTHCHECK). The sidecar it prepares must start with
 * the warm cache; a cache warmed by root (the image before the fix) must fail it.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from './helpers/egress.ts';
import { ROOT } from './helpers/process.ts';

const SCRIPT = join(ROOT, 'docker/build-check.sh');

/** The script's whole output (stdout and stderr) and exit code. */
async function buildCheck(env: Record<string, string> = {}): Promise<{ code: number; output: string }> {
  const { code, stdout, stderr } = await run('bash', [SCRIPT], { ...process.env, ...env }, 150_000);
  return { code, output: stdout + stderr };
}

const asRoot = process.getuid?.() === 0;

describe('docker/build-check.sh', () => {
  it('prepares the image outside a container: the sidecar starts as a non-root user with the warm compile cache', { timeout: 160_000 }, async () => {
    const { code, output } = await buildCheck();
    expect(output).toMatch(/npm ci --omit=dev: \d+ packages/);
    expect(output).toMatch(/sidecar ready as uid [1-9]\d* .*RSS at ready \d+ MiB/);
    expect(output).toMatch(/compile cache used: all [1-9]\d* TypeScript modules of src\/ came from the cache/);
    expect(output).toContain('HEALTHCHECK: healthy while ready, unhealthy once stopped');
    expect(code).toBe(0);
  });

  it.skipIf(!asRoot)('fails when the cache was warmed by root and the image runs as uid 1000 (the image before issue 24)', { timeout: 160_000 }, async () => {
    const { code, output } = await buildCheck({ BUILD_CHECK_WARM_UID: '0' });
    expect(output).toContain('compile cache not used: 0 modules of src/ from the cache');
    expect(code).toBe(1);
  });
});

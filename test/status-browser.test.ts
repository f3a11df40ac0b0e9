/**
 * The status page in a real browser: headless Chromium (Debian's, which
 * .ci/run installs) opens the page of a running sidecar with live traffic,
 * an upstream with an endpoint that refuses connections and an upstream whose
 * breaker opens. The page's script refreshes it until the rendered text shows
 * the endpoint unhealthy, the breaker open and a request rate above zero;
 * a screenshot goes to test/artifacts/ (git-ignored).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHROMIUM } from './helpers/chromium.ts';
import { ROOT } from './helpers/process.ts';
import { READY_EXPRESSION, startStatusScene, statusPageShot, type StatusScene } from './helpers/status-scene.ts';

// CI installs chromium (.ci/run); a developer's machine without it skips, saying why.
const haveChromium = existsSync(CHROMIUM) || process.env.CI === 'true';

describe.skipIf(!haveChromium)(`status page in headless Chromium (${CHROMIUM})`, () => {
  let scene: StatusScene;

  beforeAll(async () => {
    scene = await startStatusScene({ statusIntervalMs: 500, maxSeconds: 60 });
  });
  afterAll(async () => {
    await scene?.close();
  });

  it('shows the unhealthy endpoint, the open breaker and a request rate above zero, refreshed by its script', async () => {
    const shot = await statusPageShot(scene, READY_EXPRESSION, 30_000);
    const dir = join(ROOT, 'test/artifacts');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'status-page.png'), shot.png);

    expect(scene.sent()).toBeGreaterThan(0);
    expect(shot.ready, shot.text).toBe(true);
    expect(shot.text).toMatch(/http:\/\/127\.0\.0\.1:\d+\s+unhealthy/); // the refusing endpoint
    expect(shot.text).toMatch(/payments\s+open\s/); // its breaker
    expect(shot.text).toContain('circuit_open'); // and the answers it caused, in the recent errors
    const rate = Number(/^requests\/s[^\n]*\n\s*([\d.]+)/m.exec(shot.text)?.[1]);
    expect(rate).toBeGreaterThan(0);
    expect(shot.png.subarray(1, 4).toString()).toBe('PNG');
  }, 60_000);
});

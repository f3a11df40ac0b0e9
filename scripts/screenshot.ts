/**
 * `npm run screenshot [-- OUT.png] [-- --seconds N]`: the README's picture of the
 * status page, made the way the browser test makes its own
 * (test/helpers/status-scene.ts): a sidecar with live traffic, an unhealthy
 * endpoint and an open breaker, shown by headless Chromium after N seconds of
 * history (default 40). Writes docs/status-page.png unless told otherwise.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { READY_EXPRESSION, startStatusScene, statusPageShot } from '../test/helpers/status-scene.ts';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { seconds: { type: 'string', default: '40' } } });
const out = resolve(positionals[0] ?? resolve(import.meta.dirname, '../docs/status-page.png'));
const seconds = Number(values.seconds);

const scene = await startStatusScene({ statusIntervalMs: 500, maxSeconds: seconds + 60 });
try {
  process.stderr.write(`screenshot: ${seconds} s of traffic first, for the charts\n`);
  await new Promise((done) => setTimeout(done, seconds * 1000));
  // The top of the page: the facts, the charts, the routes, the upstreams and the first errors.
  const shot = await statusPageShot(scene, READY_EXPRESSION, 30_000, 1_200);
  if (!shot.ready) throw new Error(`the page never showed what the test expects:\n${shot.text}`);
  writeFileSync(out, shot.png);
  process.stderr.write(`screenshot: wrote ${out} (${shot.png.length} bytes, ${scene.sent()} requests sent)\n`);
} finally {
  await scene.close();
}

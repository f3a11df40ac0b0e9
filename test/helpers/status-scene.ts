/**
 * A sidecar with something to show on its status page: live traffic to a
 * healthy upstream, an upstream whose one endpoint refuses connections (its
 * health check finds it unhealthy), and an upstream that answers 500 until
 * its breaker opens. Used by the browser test and by `npm run screenshot`
 * (scripts/screenshot.ts), so the README shows what the test checks.
 */
import { request } from 'undici';
import { closedPort, echoServer, startHttpServer, type TestServer } from './servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './sidecar.ts';
import { launchChromium } from './chromium.ts';

export interface StatusScene {
  readonly sidecar: RunningSidecar;
  /** Requests the traffic loop has had answered so far. */
  readonly sent: () => number;
  close(): Promise<void>;
}

/** Starts the upstreams, the sidecar and a traffic loop that runs until close() (bounded by `maxSeconds`). */
export async function startStatusScene(options: { statusIntervalMs: number; maxSeconds: number }): Promise<StatusScene> {
  const app = await echoServer();
  const failing: TestServer = await startHttpServer((req, res) => {
    req.resume();
    res.writeHead(500, { 'content-type': 'text/plain' });
    res.end('payments is down');
  });
  const refused = await closedPort();
  const sidecar = await startSidecar(
    `${TEST_BASE}
upstreams:
  app: { endpoints: [${app.url}] }
  inventory:
    endpoints: [${app.url.replace('127.0.0.1', 'localhost')}, http://127.0.0.1:${refused}]
    healthCheck: { path: /healthz, interval: 200ms, timeout: 200ms, unhealthyAfter: 1, healthyAfter: 1 }
  payments:
    endpoints: [${failing.url}]
    breaker: { errorRate: 0.5, minRequests: 5, window: 30s, openFor: 10m }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: payments-api, match: { path: /api/payments }, upstream: payments }
    - { name: inventory-api, match: { path: /api/inventory }, upstream: inventory, retry: { attempts: 2 } }
    - { name: app, match: { path: / }, upstream: app }
`,
    {},
    { statusIntervalMs: options.statusIntervalMs },
  );

  let sent = 0;
  let running = true;
  const until = Date.now() + options.maxSeconds * 1000;
  const get = async (path: string) => {
    try {
      const response = await request(sidecar.url(path));
      await response.body.dump();
      sent++;
    } catch {
      // the sidecar is closing
    }
  };
  const loop = (async () => {
    for (let round = 0; running && Date.now() < until && round < 1_000_000; round++) {
      await Promise.all([get(`/items/${round % 7}`), get('/'), round % 3 === 0 ? get('/api/inventory/stock') : undefined, round % 5 === 0 ? get('/api/payments/charge') : undefined]);
      await new Promise((resolve) => setTimeout(resolve, 20 + 15 * Math.sin(round / 40)));
    }
  })();

  return {
    sidecar,
    sent: () => sent,
    close: async () => {
      running = false;
      await loop;
      await sidecar.close();
      await Promise.all([app.close(), failing.close()]);
    },
  };
}

/**
 * True in the page once it shows what the browser test asserts: an unhealthy
 * endpoint, an open breaker and an answer it caused, an ingress rate above zero, and a refresh by its
 * script since it loaded (the time stamp changed).
 */
export const READY_EXPRESSION = `(() => {
  const text = document.body.innerText;
  const rate = Number(document.querySelector('tr[data-listener="ingress"] td')?.textContent);
  const now = document.querySelector('header time')?.getAttribute('datetime');
  window.__firstNow ??= now;
  return text.includes('unhealthy') && /payments\\s+open\\s/.test(text) && text.includes('circuit_open') && rate > 0 && now !== window.__firstNow && document.documentElement.dataset.live === 'on';
})()`;

/**
 * Opens the status page of `scene` in headless Chromium once it shows `ready`
 * (a JS expression, or once `timeoutMs` passed), and screenshots it: the whole
 * page, or its top `height` pixels.
 */
export async function statusPageShot(scene: StatusScene, ready: string, timeoutMs: number, height?: number): Promise<{ text: string; png: Buffer; ready: boolean }> {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.open(scene.sidecar.admin('/'));
    const isReady = await page.waitFor(ready, timeoutMs);
    return { text: await page.evaluate<string>('document.body.innerText'), png: await page.screenshot(1280, height), ready: isReady };
  } finally {
    await browser.close();
  }
}

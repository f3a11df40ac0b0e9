/**
 * Rapid reset (CVE-2023-44487, issue 18): a client that opens streams and
 * resets them at once gets GOAWAY long before the upstream has seen them, and
 * the connection is counted in sidecar_h2_goaways_total; a normal client on
 * another connection keeps being served. Frames are written raw, as an
 * attacker would:
 * - paced, so that each stream reaches the proxy (the costly case: every
 *   stream starts an upstream request): the guard's GOAWAY,
 *   ENHANCE_YOUR_CALM, reason rapid_reset;
 * - 5000 pairs in one write: nghttp2 closes them before any reaches the
 *   proxy, and its own limit (set from maxResets) ends the connection.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { getHeaders, goawayCode, h2Request, h2Session, rstStream } from './helpers/h2.ts';
import { H2_PREFACE } from '../src/h2/preface.ts';
import { metric } from './helpers/reload.ts';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

const EMPTY_SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);

/** A raw connection: what the server sent, and a promise of its close (bounded: 10 s, then we close it). */
async function rawConnection(port: number): Promise<{ socket: Socket; received: Buffer[]; closed: Promise<void> }> {
  const socket = connect(port, '127.0.0.1');
  const received: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => received.push(chunk));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => {
    const timer = setTimeout(() => socket.destroy(), 10_000);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return { socket, received, closed };
}

describe('rapid reset', () => {
  let app: TestServer;
  let sidecar: RunningSidecar;
  let seen = 0;
  let port: number;

  beforeAll(async () => {
    app = await startHttpServer((req, res) => {
      seen++;
      req.resume();
      setTimeout(() => res.end('ok'), 20);
    });
    sidecar = await startSidecar(`${TEST_BASE}
upstreams: { app: { endpoints: [${app.url}] } }
ingress:
  listen: 127.0.0.1:0
  h2c: true
  http2: { maxResets: 50 }
  routes: [ { match: { path: / }, upstream: app } ]
`);
    port = sidecar.sidecar.ingressPort!;
  });
  afterAll(async () => {
    await sidecar?.close();
    await app?.close();
  });

  const servedAfterwards = async () => {
    const session = await h2Session(`http://127.0.0.1:${port}`);
    try {
      const answer = await h2Request(session, { ':path': '/after' });
      expect(answer.status).toBe(200);
      expect(answer.body.toString()).toBe('ok');
    } finally {
      session.close();
    }
  };

  it('streams reset as they reach the proxy: GOAWAY ENHANCE_YOUR_CALM after maxResets, counted; another client is served', async () => {
    const { socket, received, closed } = await rawConnection(port);
    socket.write(Buffer.concat([H2_PREFACE, EMPTY_SETTINGS]));
    let sent = 0;
    for (let id = 1; id < 2 * 500 && !socket.destroyed; id += 2) {
      socket.write(getHeaders(id, `127.0.0.1:${port}`));
      // Let the stream reach the proxy (its upstream request starts), then reset it.
      await new Promise((resolve) => setTimeout(resolve, 2));
      socket.write(rstStream(id));
      sent++;
    }
    await closed;
    expect(goawayCode(Buffer.concat(received))).toBe(11);
    expect(sent).toBeLessThan(200);
    expect(await metric(sidecar.admin(''), 'sidecar_h2_goaways_total', '{listener="ingress",reason="rapid_reset"}')).toBe(1);
    await servedAfterwards();
  });

  it('5000 HEADERS + RST_STREAM pairs in one write: nghttp2 ends the connection; few reach the upstream; counted', async () => {
    const before = seen;
    const { socket, received, closed } = await rawConnection(port);
    const burst: Buffer[] = [H2_PREFACE, EMPTY_SETTINGS];
    for (let i = 0; i < 5_000; i++) burst.push(getHeaders(1 + 2 * i, `127.0.0.1:${port}`), rstStream(1 + 2 * i));
    socket.write(Buffer.concat(burst));
    await closed;
    // nghttp2's own GOAWAY (INTERNAL_ERROR, 2) or ours (ENHANCE_YOUR_CALM, 11).
    expect([2, 11]).toContain(goawayCode(Buffer.concat(received)));
    expect(seen - before).toBeLessThan(500);
    const counted =
      (await metric(sidecar.admin(''), 'sidecar_h2_goaways_total', '{listener="ingress",reason="protocol_error"}')) +
      (await metric(sidecar.admin(''), 'sidecar_h2_goaways_total', '{listener="ingress",reason="rapid_reset"}'));
    expect(counted).toBeGreaterThanOrEqual(2);
    await servedAfterwards();
  });
});

/**
 * SETTINGS and PING floods (issue 18): every such frame makes the server
 * write an ACK. A client that sends more than `http2.maxControlFrames` of
 * them within 10 s gets GOAWAY ENHANCE_YOUR_CALM, counted in
 * sidecar_h2_goaways_total{reason="settings_flood"|"ping_flood"}; a normal
 * client on another connection keeps being served.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { FRAME, frame, goawayCode, h2Request, h2Session } from './helpers/h2.ts';
import { H2_PREFACE } from '../src/h2/preface.ts';
import { metric } from './helpers/reload.ts';
import { echoServer, type TestServer } from './helpers/servers.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

/** Writes the preface then `flood` frames in one go; resolves with what the server sent once it closed (bounded: 10 s). */
async function flood(port: number, frames: Buffer[]): Promise<Buffer> {
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
  socket.write(Buffer.concat([H2_PREFACE, ...frames]));
  await closed;
  return Buffer.concat(received);
}

describe('control-frame floods', () => {
  let app: TestServer;
  let sidecar: RunningSidecar;
  let port: number;

  beforeAll(async () => {
    app = await echoServer();
    sidecar = await startSidecar(`${TEST_BASE}
upstreams: { app: { endpoints: [${app.url}] } }
ingress:
  listen: 127.0.0.1:0
  h2c: true
  routes: [ { match: { path: / }, upstream: app } ]
`);
    port = sidecar.sidecar.ingressPort!;
  });
  afterAll(async () => {
    await sidecar?.close();
    await app?.close();
  });

  const served = async () => {
    const session = await h2Session(`http://127.0.0.1:${port}`);
    try {
      expect((await h2Request(session, { ':path': '/after' })).status).toBe(200);
    } finally {
      session.close();
    }
  };

  it('1000 SETTINGS frames: GOAWAY ENHANCE_YOUR_CALM, settings_flood; others still served', async () => {
    const received = await flood(port, Array.from({ length: 1_000 }, () => frame(FRAME.SETTINGS, 0, 0)));
    expect(goawayCode(received)).toBe(11);
    expect(await metric(sidecar.admin(''), 'sidecar_h2_goaways_total', '{listener="ingress",reason="settings_flood"}')).toBe(1);
    await served();
  });

  it('1000 PING frames: GOAWAY ENHANCE_YOUR_CALM, ping_flood; others still served', async () => {
    const received = await flood(port, [frame(FRAME.SETTINGS, 0, 0), ...Array.from({ length: 1_000 }, (_, i) => frame(FRAME.PING, 0, 0, Buffer.alloc(8, i % 256)))]);
    expect(goawayCode(received)).toBe(11);
    expect(await metric(sidecar.admin(''), 'sidecar_h2_goaways_total', '{listener="ingress",reason="ping_flood"}')).toBe(1);
    await served();
  });

  it('a client that keeps within the limit is left alone', async () => {
    const session = await h2Session(`http://127.0.0.1:${port}`);
    try {
      for (let i = 0; i < 20; i++) await new Promise<void>((resolve, reject) => session.ping((err) => (err ? reject(err) : resolve())));
      expect((await h2Request(session, { ':path': '/still' })).status).toBe(200);
    } finally {
      session.close();
    }
  });
});

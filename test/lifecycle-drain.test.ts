/**
 * Shutdown always ends (issue 20): after SIGTERM every connection is closed by
 * the drain deadline (`drainTimeout`), whatever its client does, and then the
 * supervised app is stopped and the process exits 0. Each case holds one kind
 * of connection open from the client side, never reading and never closing.
 * Before the fix a refused CONNECT (403) or a refused WebSocket upgrade (404)
 * held open like that blocked the shutdown forever: Node's server.close()
 * waits for them, and closeAllConnections() does not see sockets that left
 * HTTP.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { writeConfig, type SidecarProcess } from './helpers/process.ts';
import { startHttpServer, type TestServer } from './helpers/servers.ts';
import { startTcpServer } from './helpers/raw.ts';
import { metric, waitFor } from './helpers/reload.ts';
import { processGone, spawnWithIdleApp } from './helpers/lifecycle.ts';

const DRAIN_MS = 1_000;
/** Generous: the deadline, the app's stop and a busy machine; before the fix the process never exited. */
const EXIT_WITHIN_MS = DRAIN_MS + 5_000;

const cleanup: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

interface Setup {
  proc: SidecarProcess;
  admin: string;
  appPid: number;
  upstream: TestServer;
  opaquePort: number;
  /** How many request heads the upstream has been handed. */
  upstreamRequests: () => number;
  opaqueConnections: () => number;
}

async function setup(): Promise<Setup> {
  let requests = 0;
  // Never answers: a slow body stays in flight until the sidecar cuts it.
  const upstream = await startHttpServer((req, res) => {
    requests++;
    req.resume();
    if (req.url === '/app/quick') res.end('ok');
  });
  cleanup.push(() => upstream.close());
  let opaqueConnections = 0;
  const opaque = await startTcpServer(() => opaqueConnections++);
  cleanup.push(() => opaque.close());
  const file = writeConfig(`
admin: { listen: 127.0.0.1:0 }
log: { level: info, access: true }
drainTimeout: ${DRAIN_MS}ms
upstreams: { up: { endpoints: [${upstream.url}] } }
ingress:
  listen: 127.0.0.1:0
  routes: [{ match: { path: /app/ }, upstream: up, websocket: true }]
egress:
  listen: 127.0.0.1:0
  routes: [{ match: { host: 127.0.0.1, ports: [${opaque.port}] } }]
`);
  const { proc, appPid } = await spawnWithIdleApp(file, cleanup);
  return {
    proc,
    admin: `http://127.0.0.1:${proc.adminPort}`,
    appPid,
    upstream,
    opaquePort: opaque.port,
    upstreamRequests: () => requests,
    opaqueConnections: () => opaqueConnections,
  };
}

/**
 * A client socket that sends `data` and never closes its side, even once the
 * sidecar has closed its own (allowHalfOpen): the sidecar alone must end it.
 */
async function holdOpen(port: number, data: string | Buffer): Promise<Socket> {
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  socket.on('error', () => undefined);
  cleanup.push(() => void socket.destroy());
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(data);
  return socket;
}

/** Reads until `pattern` appears in what came back, then stops reading. */
function readUntil(socket: Socket, pattern: RegExp): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (!pattern.test(text)) return;
      socket.off('data', onData);
      socket.pause();
      resolve(text);
    };
    socket.on('data', onData);
  });
}

const activeConnections = (s: Setup, listener: string) => metric(s.admin, 'sidecar_active_connections', `{listener="${listener}"}`);

/** SIGTERM, then: the process exits 0 within the generous bound, and the app is gone. */
async function expectShutdownEnds(s: Setup): Promise<void> {
  s.proc.child.kill('SIGTERM');
  const outcome = await Promise.race([
    s.proc.exited.then((code) => ({ exited: code })),
    new Promise<{ exited: 'still running' }>((resolve) => setTimeout(() => resolve({ exited: 'still running' }), EXIT_WITHIN_MS)),
  ]);
  expect(outcome).toEqual({ exited: 0 });
  expect(await processGone(s.appPid)).toBe(true);
}

describe('shutdown ends by the drain deadline, whatever the clients hold open', () => {
  it('a refused CONNECT (403) whose client keeps the socket open without reading', async () => {
    const s = await setup();
    const socket = await holdOpen(s.proc.egressPort!, 'CONNECT denied.example:443 HTTP/1.1\r\nHost: denied.example:443\r\n\r\n');
    expect(await readUntil(socket, /\r\n\r\n/)).toMatch(/^HTTP\/1\.1 403 /);
    await expectShutdownEnds(s);
  });

  it('a refused WebSocket upgrade (404 no_route) whose client keeps the socket open without reading', async () => {
    const s = await setup();
    const socket = await holdOpen(
      s.proc.ingressPort!,
      'GET /elsewhere HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    expect(await readUntil(socket, /\r\n\r\n/)).toMatch(/^HTTP\/1\.1 404 /);
    await expectShutdownEnds(s);
  });

  it('an idle keep-alive connection', async () => {
    const s = await setup();
    const socket = await holdOpen(s.proc.ingressPort!, 'GET /app/quick HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await readUntil(socket, /\r\n\r\n[\s\S]*ok/)).toMatch(/^HTTP\/1\.1 200 /);
    await expectShutdownEnds(s);
  });

  it('a client in the middle of sending its headers', async () => {
    const s = await setup();
    await holdOpen(s.proc.ingressPort!, 'GET /app/ HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    await waitFor('the connection to be accepted', async () => ((await activeConnections(s, 'ingress')) >= 1 ? true : undefined));
    await expectShutdownEnds(s);
  });

  it('a slow request body', async () => {
    const s = await setup();
    await holdOpen(s.proc.ingressPort!, 'POST /app/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nfirst bytes');
    await waitFor('the request to reach the upstream', () => (s.upstreamRequests() >= 1 ? true : undefined));
    await expectShutdownEnds(s);
  });

  it('an open blind tunnel', async () => {
    const s = await setup();
    const socket = await holdOpen(s.proc.egressPort!, `CONNECT 127.0.0.1:${s.opaquePort} HTTP/1.1\r\nHost: 127.0.0.1:${s.opaquePort}\r\n\r\n`);
    expect(await readUntil(socket, /\r\n\r\n/)).toMatch(/^HTTP\/1\.1 200 /);
    socket.write(Buffer.from([0x16, 0x03, 0x01])); // the start of a TLS record: a blind tunnel
    await waitFor('the tunnel to reach its destination', () => (s.opaqueConnections() >= 1 ? true : undefined));
    await expectShutdownEnds(s);
  });
});

/**
 * gRPC deadlines through the sidecar (SPEC "HTTP/2 and gRPC"): the client's
 * `grpc-timeout` bounds the route timeout (the smaller wins) and what is left
 * goes upstream in `grpc-timeout`; a deadline shorter than the upstream's
 * delay gives DEADLINE_EXCEEDED and the upstream sees its call cancelled.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from './helpers/egress.ts';
import { echoClient, grpc, startGrpcServer, unary, type EchoClientInstance, type TestGrpcServer } from './helpers/grpc.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

describe('gRPC deadlines', () => {
  let upstream: TestGrpcServer;
  let sidecar: RunningSidecar;
  let client: EchoClientInstance;
  /** Per request text: the grpc-timeout the upstream got, and whether it saw the call cancelled. */
  const calls = new Map<string, { timeout: string | undefined; cancelled: boolean }>();

  beforeAll(async () => {
    upstream = await startGrpcServer({
      unary: (call, callback) => {
        const seen = { timeout: call.metadata.get('grpc-timeout')[0] as string | undefined, cancelled: false };
        calls.set(call.request.text, seen);
        // grpc-js reads grpc-timeout into the deadline and hides the header: take it from there.
        const deadline = call.getDeadline();
        const at = deadline instanceof Date ? deadline.getTime() : deadline;
        if (seen.timeout === undefined && Number.isFinite(at)) seen.timeout = `${at - Date.now()}`;
        const timer = setTimeout(() => callback(null, { text: 'too late' }), 3_000);
        call.on('cancelled', () => {
          seen.cancelled = true;
          clearTimeout(timer);
        });
      },
    });
    sidecar = await startSidecar(`${TEST_BASE}
upstreams: { slow: { endpoints: [http://127.0.0.1:${upstream.port}], protocol: h2c } }
ingress:
  listen: 127.0.0.1:0
  h2c: true
  routes:
    - { name: short, match: { path: /demo.Echo/, headers: { x-route: short } }, upstream: slow, timeout: 300ms }
    - { name: long, match: { path: /demo.Echo/ }, upstream: slow, timeout: 15s }
`);
    client = echoClient(`127.0.0.1:${sidecar.sidecar.ingressPort}`);
  });
  afterAll(async () => {
    client?.close();
    await sidecar?.close();
    await upstream?.close();
  });

  it('a route timeout shorter than the upstream: DEADLINE_EXCEEDED from the sidecar, the upstream call cancelled', async () => {
    const metadata = new grpc.Metadata();
    metadata.set('x-route', 'short');
    const result = await unary(client, { text: 'route' }, metadata, 10_000);
    expect(result.error?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(result.status?.metadata.get('x-sidecar-error')).toEqual(['upstream_timeout']);
    await eventually(() => (calls.get('route')?.cancelled ? true : undefined));
    // The upstream was told what was left of the route's 300 ms.
    expect(Number.parseInt(calls.get('route')!.timeout!, 10)).toBeLessThanOrEqual(300);
  });

  it("the client's deadline wins over a longer route timeout: what is left goes upstream, which sees the call cancelled", async () => {
    const result = await unary(client, { text: 'client' }, new grpc.Metadata(), 400);
    expect(result.error?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    await eventually(() => (calls.get('client')?.cancelled ? true : undefined));
    expect(Number.parseInt(calls.get('client')!.timeout!, 10)).toBeLessThanOrEqual(400);
  });
});

/**
 * gRPC codes in `retry.on` (SPEC "HTTP/2 and gRPC"): a trailers-only
 * UNAVAILABLE from one endpoint is retried on the other, although a gRPC
 * call is a POST, because the route names `unavailable`; a route that does
 * not name it passes the UNAVAILABLE through. Breaker and outlier ejection
 * count grpc-status 14 as a failure under HTTP 200.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoClient, grpc, startGrpcServer, unary, type EchoClientInstance, type TestGrpcServer } from './helpers/grpc.ts';
import { metric } from './helpers/reload.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';

describe('gRPC retries and failures', () => {
  let failing: TestGrpcServer;
  let healthy: TestGrpcServer;
  let sidecar: RunningSidecar;
  let client: EchoClientInstance;
  let failingCalls = 0;
  let healthyCalls = 0;

  beforeAll(async () => {
    failing = await startGrpcServer({
      unary: (_call, callback) => {
        failingCalls++;
        callback({ code: grpc.status.UNAVAILABLE, details: 'overloaded, try elsewhere' });
      },
    });
    healthy = await startGrpcServer({
      unary: (call, callback) => {
        healthyCalls++;
        callback(null, { text: `served: ${call.request.text}` });
      },
    });
    sidecar = await startSidecar(`${TEST_BASE}
upstreams:
  pair:
    endpoints: [http://127.0.0.1:${failing.port}, http://127.0.0.1:${healthy.port}]
    protocol: h2c
  bad:
    endpoints: [http://127.0.0.1:${failing.port}]
    protocol: h2c
    breaker: { errorRate: 0.5, minRequests: 4, window: 10s, openFor: 30s }
ingress:
  listen: 127.0.0.1:0
  h2c: true
  routes:
    - { name: plain, match: { path: /demo.Echo/, headers: { x-route: plain } }, upstream: pair }
    - { name: broken, match: { path: /demo.Echo/, headers: { x-route: broken } }, upstream: bad }
    - { name: retried, match: { path: /demo.Echo/ }, upstream: pair, retry: { attempts: 2, on: [unavailable] } }
`);
    client = echoClient(`127.0.0.1:${sidecar.sidecar.ingressPort}`);
  });
  afterAll(async () => {
    client?.close();
    await sidecar?.close();
    await failing?.close();
    await healthy?.close();
  });

  const route = (name: string) => {
    const metadata = new grpc.Metadata();
    metadata.set('x-route', name);
    return metadata;
  };

  it('retry.on: [unavailable] retries a trailers-only UNAVAILABLE on the other endpoint, POST as it is', async () => {
    for (let i = 0; i < 4; i++) {
      const result = await unary(client, { text: `call ${i}` });
      expect(result.error).toBeNull();
      expect(result.response).toEqual({ text: `served: call ${i}` });
    }
    // Round-robin sent half of the first tries to the failing endpoint; each was retried on the healthy one.
    expect(failingCalls).toBeGreaterThan(0);
    expect(healthyCalls).toBe(4);
    expect(await metric(sidecar.admin(''), 'sidecar_upstream_retries_total', '{upstream="pair",reason="unavailable"}')).toBe(failingCalls);
  });

  it('without it, the UNAVAILABLE passes through as the upstream sent it', async () => {
    let unavailable = 0;
    for (let i = 0; i < 4; i++) {
      const result = await unary(client, { text: 'x' }, route('plain'));
      if (result.error) {
        expect(result.error.code).toBe(grpc.status.UNAVAILABLE);
        expect(result.error.details).toBe('overloaded, try elsewhere');
        expect(result.status?.metadata.get('x-sidecar-error')).toEqual([]);
        unavailable++;
      }
    }
    expect(unavailable).toBe(2);
  });

  it('the breaker counts grpc-status 14 under HTTP 200 as failures and opens: then circuit_open, UNAVAILABLE', async () => {
    const codes: string[] = [];
    for (let i = 0; i < 6; i++) {
      const result = await unary(client, { text: 'x' }, route('broken'));
      codes.push(String(result.status?.metadata.get('x-sidecar-error')[0] ?? result.error?.code));
    }
    expect(codes.slice(0, 4)).toEqual(['14', '14', '14', '14']);
    expect(codes.slice(4)).toEqual(['circuit_open', 'circuit_open']);
    expect(await metric(sidecar.admin(''), 'sidecar_grpc_responses_total', '{listener="ingress",route="broken",upstream="bad",grpc_status="14"}')).toBe(6);
  });
});

/**
 * gRPC through the sidecar (issue 18), @grpc/grpc-js on both sides: unary,
 * server streaming, client streaming and bidirectional calls are relayed
 * stream by stream with their metadata and trailers, over h2c and over TLS
 * (ALPN h2) on ingress, to an h2c upstream, on a route with `compress`
 * (which leaves gRPC alone). An upstream's error status passes through
 * unchanged with its message and metadata.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoClient, grpc, startGrpcServer, unary, type EchoClientInstance, type Msg, type TestGrpcServer } from './helpers/grpc.ts';
import { startSidecar, TEST_BASE, type RunningSidecar } from './helpers/sidecar.ts';
import { TestCa, type IssuedCert } from './helpers/tls.ts';

describe('gRPC relayed through ingress', () => {
  let upstream: TestGrpcServer;
  let h2c: RunningSidecar;
  let tls: RunningSidecar;
  let ca: TestCa;
  let cert: IssuedCert;
  let client: EchoClientInstance;
  /** Metadata the upstream saw on its last unary call. */
  let seen: grpc.Metadata | undefined;

  beforeAll(async () => {
    upstream = await startGrpcServer({
      unary: (call, callback) => {
        seen = call.metadata;
        if (call.request.text === 'fail') {
          const trailer = new grpc.Metadata();
          trailer.set('x-detail', 'the reason');
          callback({ code: grpc.status.INVALID_ARGUMENT, details: 'bad input: "fail" ünïcode', metadata: trailer });
          return;
        }
        const head = new grpc.Metadata();
        head.set('x-head', 'from upstream');
        call.sendMetadata(head);
        callback(null, { text: `echo: ${call.request.text}` });
      },
    });
    ca = new TestCa();
    cert = ca.issue('localhost', { dns: ['localhost'], ips: ['127.0.0.1'] });
    const routes = `
upstreams: { grpc: { endpoints: [http://127.0.0.1:${upstream.port}], protocol: h2c } }
`;
    h2c = await startSidecar(`${TEST_BASE}${routes}
ingress:
  listen: 127.0.0.1:0
  h2c: true
  # compress on: gRPC frames and compresses its own messages, the policy must leave them alone.
  routes: [ { match: { path: /demo.Echo/ }, upstream: grpc, compress: { minLength: 1 } } ]
`);
    tls = await startSidecar(`${TEST_BASE}${routes}
ingress:
  listen: 127.0.0.1:0
  tls: { cert: ${cert.certFile}, key: ${cert.keyFile} }
  routes: [ { match: { path: /demo.Echo/ }, upstream: grpc } ]
`);
    client = echoClient(`127.0.0.1:${h2c.sidecar.ingressPort}`);
  });
  afterAll(async () => {
    client?.close();
    await h2c?.close();
    await tls?.close();
    await upstream?.close();
    ca?.remove();
  });

  it('unary: the answer, the response metadata and status OK; the upstream sees the call metadata', async () => {
    const metadata = new grpc.Metadata();
    metadata.set('x-tenant', 'acme');
    const result = await unary(client, { text: 'hi' }, metadata);
    expect(result.error).toBeNull();
    expect(result.response).toEqual({ text: 'echo: hi' });
    expect(result.metadata?.get('x-head')).toEqual(['from upstream']);
    expect(result.status?.code).toBe(grpc.status.OK);
    expect(seen?.get('x-tenant')).toEqual(['acme']);
    expect(seen?.get('x-forwarded-proto')).toEqual(['http']);
  });

  it('server streaming: every message, in order', async () => {
    const got: Msg[] = [];
    await new Promise<void>((resolve, reject) => {
      const call = (client as unknown as { serverStream: Function }).serverStream({ text: 'tick' }) as grpc.ClientReadableStream<Msg>;
      call.on('data', (message: Msg) => got.push(message));
      call.on('error', reject);
      call.on('end', resolve);
    });
    expect(got.map((message) => message.n)).toEqual([1, 2, 3, 4, 5]);
  });

  it('client streaming: the upstream reads every message', async () => {
    const answer = await new Promise<Msg>((resolve, reject) => {
      const call = (client as unknown as { clientStream: Function }).clientStream((error: Error | null, response: Msg) =>
        error ? reject(error) : resolve(response),
      ) as grpc.ClientWritableStream<Msg>;
      for (const text of ['a', 'b', 'c', 'd']) call.write({ text });
      call.end();
    });
    expect(answer).toEqual({ text: 'a,b,c,d', n: 4 });
  });

  it('bidirectional: each message answered while the call stays open', async () => {
    const call = (client as unknown as { bidi: Function }).bidi() as grpc.ClientDuplexStream<Msg, Msg>;
    const answers: string[] = [];
    const next = () => new Promise<Msg>((resolve) => call.once('data', resolve));
    for (const text of ['one', 'two', 'three']) {
      const answer = next();
      call.write({ text });
      // The upstream answers each message before the client sends the next: the relay does not wait for the end.
      answers.push((await answer).text);
    }
    const ended = new Promise<void>((resolve) => call.on('end', resolve));
    call.on('data', () => {});
    call.end();
    await ended;
    expect(answers).toEqual(['echo: one', 'echo: two', 'echo: three']);
  });

  it("an upstream's error status passes through unchanged, with its message and metadata", async () => {
    const result = await unary(client, { text: 'fail' });
    expect(result.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(result.error?.details).toBe('bad input: "fail" ünïcode');
    expect(result.status?.metadata.get('x-detail')).toEqual(['the reason']);
    expect(result.status?.metadata.get('x-sidecar-error')).toEqual([]);
  });

  it('over TLS (ALPN h2) as over h2c', async () => {
    const secure = echoClient(`localhost:${tls.sidecar.ingressPort}`, grpc.credentials.createSsl(Buffer.from(ca.ca)));
    try {
      const result = await unary(secure, { text: 'secure' });
      expect(result.error).toBeNull();
      expect(result.response).toEqual({ text: 'echo: secure' });
      expect(seen?.get('x-forwarded-proto')).toEqual(['https']);
    } finally {
      secure.close();
    }
  });
});

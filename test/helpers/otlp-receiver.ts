/**
 * An OTLP/HTTP trace receiver on loopback, for tracing tests: it decodes what
 * arrives (the JSON encoding the sidecar sends) into plain spans. `mode`
 * `slow` accepts requests and never answers (a collector that hangs).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { startHttpServer, type TestServer } from './servers.ts';

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  status: { code: number; message?: string };
  /** Attributes by key, values decoded (intValue as a number). */
  attributes: Record<string, string | number | boolean>;
  /** The resource's attributes. */
  resource: Record<string, string | number | boolean>;
}

export interface OtlpReceiver {
  readonly url: string;
  readonly spans: ReceivedSpan[];
  /** Export requests received (answered or not). */
  readonly requests: () => number;
  /** Resolves once `count` spans arrived, or after `timeoutMs` (then the caller's assertion says what is missing). */
  waitForSpans(count: number, timeoutMs: number): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

type AnyValue = { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number };

function decodeAttributes(list: Array<{ key: string; value: AnyValue }> | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const { key, value } of list ?? []) {
    out[key] = value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : (value.boolValue ?? value.doubleValue ?? ''));
  }
  return out;
}

export async function startOtlpReceiver(mode: 'ok' | 'slow' = 'ok'): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const hanging: ServerResponse[] = [];
  let requests = 0;
  const server: TestServer = await startHttpServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      requests++;
      if (mode === 'slow') {
        hanging.push(res);
        return;
      }
      if (req.method !== 'POST' || req.url !== '/v1/traces' || !String(req.headers['content-type']).startsWith('application/json')) {
        res.writeHead(400).end();
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        resourceSpans: Array<{ resource: { attributes: Array<{ key: string; value: AnyValue }> }; scopeSpans: Array<{ spans: Array<Omit<ReceivedSpan, 'attributes' | 'resource'> & { attributes: Array<{ key: string; value: AnyValue }> }> }> }>;
      };
      for (const resourceSpans of body.resourceSpans) {
        const resource = decodeAttributes(resourceSpans.resource.attributes);
        for (const scope of resourceSpans.scopeSpans) for (const span of scope.spans) spans.push({ ...span, attributes: decodeAttributes(span.attributes), resource });
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  return {
    url: `${server.url}/v1/traces`,
    spans,
    requests: () => requests,
    waitForSpans: async (count, timeoutMs) => {
      const until = Date.now() + timeoutMs;
      for (let round = 0; round < 1_000 && spans.length < count && Date.now() < until; round++) await new Promise((resolve) => setTimeout(resolve, 20));
      return spans;
    },
    close: async () => {
      for (const res of hanging) res.destroy();
      await server.close();
    },
  };
}

/** The upstream `app` at `upstreamUrl` and an ingress route `app` to it: the rest of a tracing test's config. */
export function appBehindIngress(upstreamUrl: string): string {
  return `
upstreams:
  app: { endpoints: [${upstreamUrl}] }
ingress:
  listen: 127.0.0.1:0
  routes:
    - { name: app, match: { path: / }, upstream: app }
`;
}

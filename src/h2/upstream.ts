/**
 * What the attempt loop (proxy/proxy.ts) asks about HTTP/2 upstreams: whether
 * an endpoint may speak h2, whether a gRPC call can be carried at all, and
 * whether a failed try was a stream the upstream refused unprocessed.
 */
import type { ClientRequest } from '../net/client.ts';
import { ProxyError } from '../core/errors.ts';
import type { ProxyTarget } from '../proxy/proxy.ts';
import type { EndpointState } from '../upstream/state.ts';

/** Whether `endpoint` may speak HTTP/2: fixed by its `protocol`, or by ALPN on an https endpoint with `auto`. */
export function speaksH2(endpoint: EndpointState): boolean {
  const { configured } = endpoint.protocol;
  return configured === 'h2' || configured === 'h2c' || (configured === 'auto' && endpoint.tls !== undefined);
}

/**
 * gRPC needs HTTP/2 end to end (trailers, streams both ways at once): across
 * HTTP/1.1 on either side the sidecar refuses the call with a clear error
 * rather than pass on something the other side cannot read.
 */
export function protocolMismatch(req: ClientRequest, target: ProxyTarget): ProxyError | undefined {
  if (req.httpVersion !== '2') return new ProxyError('protocol_mismatch', `gRPC needs HTTP/2: this call came over HTTP/${req.httpVersion}`);
  const upstream = target.upstream;
  const endpoint = upstream.endpoints[0];
  if (endpoint && !speaksH2(endpoint)) {
    const hint = endpoint.tls ? 'h2 or auto' : 'h2c';
    return new ProxyError('protocol_mismatch', `gRPC needs HTTP/2: the upstream "${upstream.name}" is spoken to over HTTP/1.1 (set upstreams.${upstream.name}.protocol: ${hint})`);
  }
  return undefined;
}

/** An HTTP/2 upstream refused the stream before processing it (RFC 9113 8.7): it may go again, whatever its method. */
export function isRefusedStream(cause: unknown): boolean {
  const message = (cause as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' && (message.includes('NGHTTP2_REFUSED_STREAM') || message.includes('"GOAWAY" frame received'));
}

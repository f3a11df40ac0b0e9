/**
 * Answers the sidecar gives itself. Every failure on a request's path becomes a
 * ProxyError with a stable code; the code -> status table below is the only
 * place that decides the status (SPEC.md, "Answers the sidecar gives itself").
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { ClientResponse } from '../net/client.ts';

export const ERROR_STATUS = {
  bad_request: 400,
  proxy_auth_required: 407,
  destination_denied: 403,
  no_route: 404,
  method_not_allowed: 405,
  request_timeout: 408,
  payload_too_large: 413,
  uri_too_long: 414,
  rate_limited: 429,
  headers_too_large: 431,
  not_implemented: 501,
  internal_error: 500,
  upstream_connect_failed: 502,
  upstream_reset: 502,
  upstream_bad_response: 502,
  circuit_open: 503,
  no_healthy_endpoint: 503,
  overloaded: 503,
  app_not_ready: 503,
  upstream_timeout: 504,
  protocol_mismatch: 502,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

const DEFAULT_MESSAGE: Record<ErrorCode, string> = {
  bad_request: 'malformed request',
  proxy_auth_required: 'proxy authentication required',
  destination_denied: 'no egress route allows this destination',
  no_route: 'no route matches this request',
  method_not_allowed: 'method not allowed',
  request_timeout: 'the client was too slow sending the request',
  payload_too_large: 'request body over the configured limit',
  uri_too_long: 'request URI over the limit',
  rate_limited: 'too many requests: the rate limit of this route is exhausted',
  headers_too_large: 'request headers over the configured limit',
  not_implemented: 'transfer coding not supported',
  internal_error: 'the sidecar failed on this request (a bug: see its log)',
  upstream_connect_failed: 'could not connect to the upstream',
  upstream_reset: 'the upstream closed the connection before a complete response',
  upstream_bad_response: 'the upstream answered something that is not valid HTTP',
  circuit_open: 'the circuit breaker of this upstream is open',
  no_healthy_endpoint: 'no healthy endpoint in this upstream',
  overloaded: 'too many requests in flight to this upstream',
  app_not_ready: 'the application is not ready yet',
  upstream_timeout: 'the upstream did not answer in time',
  protocol_mismatch: 'gRPC needs HTTP/2 from the client to the upstream',
};

/** A failure with a stable code; `cause` keeps the underlying error for logs. */
export class ProxyError extends Error {
  readonly code: ErrorCode;
  readonly status: number;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? DEFAULT_MESSAGE[code], options);
    this.name = 'ProxyError';
    this.code = code;
    this.status = ERROR_STATUS[code];
  }
}

/** Maps undici's error codes (lib/core/errors.js) and socket errors to our codes. */
export function fromUpstreamError(err: unknown): ProxyError {
  if (err instanceof ProxyError) return err;
  const { code, name } = (err ?? {}) as { code?: string; name?: string };
  // undici's parser errors do not always carry a code.
  if (name === 'HTTPParserError') return new ProxyError('upstream_bad_response', undefined, { cause: err });
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ECONNREFUSED':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EADDRNOTAVAIL':
      return new ProxyError('upstream_connect_failed', undefined, { cause: err });
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return new ProxyError('upstream_timeout', undefined, { cause: err });
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_INVALID_VERSION':
    case 'HPE_INVALID_STATUS':
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'HPE_INVALID_CHUNK_SIZE':
    case 'HPE_INVALID_TRANSFER_ENCODING':
    case 'HPE_CR_EXPECTED':
    case 'HPE_LF_EXPECTED':
    case 'UND_ERR_INFO':
      return new ProxyError('upstream_bad_response', undefined, { cause: err });
    default:
      if (typeof code === 'string' && (code.startsWith('HPE_') || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH')) {
        return new ProxyError('upstream_bad_response', undefined, { cause: err });
      }
      if (typeof code === 'string' && /^(ERR_TLS|CERT_|UNABLE_TO|DEPTH_ZERO|SELF_SIGNED|ERR_SSL)/.test(code)) {
        return new ProxyError('upstream_connect_failed', `TLS handshake with the upstream failed (${code})`, { cause: err });
      }
      return new ProxyError('upstream_reset', undefined, { cause: err });
  }
}

/** Body and headers of the sidecar's own answer (for a ServerResponse or a raw socket). */
export function errorAnswer(error: ProxyError, extraHeaders?: Record<string, string>): { body: string; headers: Record<string, string | number> } {
  const body = JSON.stringify({ error: error.code, message: error.message });
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-sidecar-error': error.code,
    'cache-control': 'no-store',
    ...extraHeaders,
  };
  return { body, headers };
}

/**
 * Writes the sidecar's own answer: `x-sidecar-error: CODE` and a JSON body.
 * Does nothing to the body when headers already left (the caller then destroys
 * the connection instead). Returns the body bytes written, for `bytesOut`.
 */
export function sendError(res: ClientResponse, error: ProxyError, extraHeaders?: Record<string, string>): number {
  if (res.headersSent) {
    res.destroy(error);
    return 0;
  }
  const { body, headers } = errorAnswer(error, extraHeaders);
  // A malformed request leaves the connection in an unknown state: close it.
  if (error.code === 'bad_request') headers.connection = 'close';
  res.writeHead(error.status, headers);
  if (res.req?.method === 'HEAD') {
    res.end();
    return 0;
  }
  res.end(body);
  return headers['content-length'] as number;
}

/** The part of a request's record (observe/exchange.ts) that an answer touches. */
export interface AnsweredRequest {
  readonly reqId: string;
  error: ErrorCode | undefined;
  /** The grpc-status of a gRPC answer (the access line's `grpcStatus`). */
  grpcStatus?: number | undefined;
  /** The answer's body bytes are counted here (the access line's `bytesOut`). */
  bytesOut: number;
}

/**
 * The sidecar's own answer to a request: records the code for the access log
 * and carries the request id, as every answer does. The listeners do not set
 * `x-request-id` up front with setHeader(): a header set that way sends Node's
 * writeHead() down its slow path (every header merged and validated one by
 * one), which cost about 3 us per proxied request under load.
 */
export function refuse(res: ClientResponse, request: AnsweredRequest, error: ProxyError, extraHeaders?: Record<string, string>): void {
  // A gRPC client reads grpc-status, not the HTTP status: it gets the gRPC form of every answer of ours.
  if (isGrpc(res.req.headers)) return refuseGrpc(res, request, error, extraHeaders);
  request.error = error.code;
  request.bytesOut += sendError(res, error, { 'x-request-id': request.reqId, ...extraHeaders });
}

/**
 * grpc-status of the sidecar's own answers to gRPC requests (SPEC "HTTP/2 and
 * gRPC"); a code not listed is 2 UNKNOWN.
 */
export const GRPC_STATUS: Partial<Record<ErrorCode, number>> = {
  upstream_connect_failed: 14,
  upstream_reset: 14,
  circuit_open: 14,
  no_healthy_endpoint: 14,
  app_not_ready: 14,
  upstream_timeout: 4,
  request_timeout: 4,
  no_route: 12,
  protocol_mismatch: 12,
  overloaded: 8,
  rate_limited: 8,
  destination_denied: 7,
};

/**
 * A grpc-message value: percent-encoded as gRPC says (every byte outside
 * printable ASCII, and `%`); spaces, slashes and colons stay as they are,
 * which gRPC clients decode back to the same text.
 */
export function grpcMessage(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** `content-type: application/grpc`, `application/grpc+proto` and the like. */
export function isGrpc(headers: IncomingHttpHeaders): boolean {
  const type = headers['content-type'];
  return type !== undefined && type.startsWith('application/grpc');
}

/**
 * The sidecar's own answer to a gRPC request: HTTP 200 and trailers-only (the
 * status travels in the head, there is no body), since a gRPC client reads
 * grpc-status, not the HTTP status. `x-sidecar-error` and `extraHeaders` as
 * on every answer.
 */
export function refuseGrpc(res: ClientResponse, request: AnsweredRequest, error: ProxyError, extraHeaders?: Record<string, string>): void {
  request.error = error.code;
  if (res.headersSent) {
    res.destroy(error);
    return;
  }
  const status = GRPC_STATUS[error.code] ?? 2;
  request.grpcStatus = status;
  res.writeHead(200, {
    'content-type': 'application/grpc',
    'grpc-status': String(status),
    'grpc-message': grpcMessage(error.message),
    'x-sidecar-error': error.code,
    'x-request-id': request.reqId,
    'content-length': 0,
    ...extraHeaders,
  });
  res.end();
}

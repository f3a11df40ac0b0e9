/**
 * The error vocabulary: answers the sidecar gives itself. Every failure on a
 * request's path becomes a ProxyError with a stable code; the code -> status
 * table below is the only place that decides the status (SPEC.md, "Answers the
 * sidecar gives itself"). It sits below net/, upstream/, observe/ and proxy/,
 * which all speak it, and imports none of them (as undici keeps core/errors.js);
 * writing an answer to a response is net/error-answer.ts.
 */
import type { IncomingHttpHeaders } from 'node:http';

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

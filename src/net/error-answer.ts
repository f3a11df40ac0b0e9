/**
 * Writing the sidecar's own answers (core/errors.ts) to a client's response:
 * the JSON form, the gRPC trailers-only form, and the record the access line
 * reads.
 */
import { errorAnswer, GRPC_STATUS, grpcMessage, isGrpc } from '../core/errors.ts';
import type { ErrorCode, ProxyError } from '../core/errors.ts';
import type { ClientResponse } from './client.ts';

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
    'content-type': grpcAnswerType(res.req.headers['content-type']),
    'grpc-status': String(status),
    'grpc-message': grpcMessage(error.message),
    'x-sidecar-error': error.code,
    'x-request-id': request.reqId,
    'content-length': 0,
    ...extraHeaders,
  });
  res.end();
}

/**
 * The content type of a gRPC answer of ours: a gRPC-Web client (browsers,
 * through HTTP/1.1) checks that the answer is gRPC-Web too, so it gets its own
 * media type back; every other gRPC client gets `application/grpc`.
 */
function grpcAnswerType(requestType: string | undefined): string {
  if (!requestType?.startsWith('application/grpc-web')) return 'application/grpc';
  // Echoed only when it is one of gRPC-Web's own media types: the client wrote it.
  const media = requestType.split(';', 1)[0].trim();
  return GRPC_WEB_MEDIA.test(media) ? media : 'application/grpc-web';
}

/** application/grpc-web, -web-text, with an optional +proto, +json or similar suffix. */
const GRPC_WEB_MEDIA = /^application\/grpc-web(?:-text)?(?:\+[a-z0-9.-]{1,32})?$/i;


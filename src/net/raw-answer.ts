/**
 * The sidecar's own answers written straight to a socket, for the places
 * where there is no ServerResponse: parser and timeout errors of Node's HTTP
 * servers (listeners and HTTP inside CONNECT tunnels), a refused CONNECT, a
 * refused or failed WebSocket upgrade. Same shape as errors.ts `sendError`.
 */
import { http } from './node-http.ts';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ListenerName } from '../config/compile.ts';
import { Exchange } from '../observe/exchange.ts';
import { ProxyError, errorAnswer, type ErrorCode } from '../core/errors.ts';
import { newUuid } from '../proxy/headers.ts';
import { ObservedResponse } from './observed-response.ts';

/**
 * How long a socket answered with an error keeps reading, and dropping, what
 * the client is still sending before it is closed. Closing a socket with
 * unread bytes makes the kernel send a reset, and a client still writing its
 * request (a 20 KiB head over maxHeaderSize, a body after a refusal) may then
 * lose our answer before it reads it: NGINX's lingering close, shorter. It
 * also bounds how long a client can hold a refused socket open.
 */
const LINGER_MS = 2_000;

/** Writes `error` as a complete HTTP/1.1 response and ends the socket; returns the body bytes written (0 when the socket was gone). */
export function writeRawError(socket: Duplex, error: ProxyError, extraHeaders: Record<string, string> = {}): number {
  if (!socket.writable) {
    socket.destroy();
    return 0;
  }
  const { body, headers } = errorAnswer(error, { ...extraHeaders, connection: 'close' });
  let head = `HTTP/1.1 ${error.status} ${http.STATUS_CODES[error.status] ?? 'Error'}\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  socket.end(`${head}\r\n${body}`);
  linger(socket);
  return headers['content-length'] as number;
}

/** Reads and drops what still arrives on an answered socket, and closes it after LINGER_MS at the latest. */
function linger(socket: Duplex): void {
  socket.on('data', discard);
  socket.resume();
  const timer = setTimeout(() => socket.destroy(), LINGER_MS).unref();
  socket.once('close', () => clearTimeout(timer));
}

function discard(): void {}

/** A server's 'clientError' handler: the parser or timeout error answered in the sidecar's format. */
export function answerClientError(err: Error & { code?: string; reason?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET') socket.destroy();
  else writeRawError(socket, new ProxyError(clientErrorCode(err.code, err.reason)));
}

/**
 * The 'clientError' handler of a proxy listener (and of the HTTP server
 * inside CONNECT tunnels): the answer of `answerClientError`, and the request
 * made visible, with an access line (when `accessLog()` says so) and its
 * count in `sidecar_requests_total` and `sidecar_bad_requests_total`.
 *
 * - While a request is in flight on the socket (a body too slow for
 *   `requestTimeout`, a broken chunked body), the error ends that request:
 *   its own Exchange records the answer, so it keeps its route and id. Once
 *   its response has begun, no answer can be written any more: the
 *   connection is cut (a 408 would land inside the response's body).
 * - Otherwise the parser rejected a new request head: it gets an Exchange
 *   of its own with what is known (peer, listener, code, status), a new
 *   request id, which the answer carries too, and no route.
 * - A connection that never sent a byte (a preconnect, a port probe) timing
 *   out is answered but not logged or counted: it made no request (HAProxy's
 *   `dontlognull`). Nor is a client that reset the connection, or an error
 *   on a socket already answered.
 */
export function clientErrorHandler(listener: ListenerName, accessLog: () => boolean): (err: Error & { code?: string; reason?: string }, socket: Duplex) => void {
  return (err, duplex) => {
    if (err.code === 'ECONNRESET' || !duplex.writable) {
      duplex.destroy();
      return;
    }
    const socket = duplex as Socket;
    const error = new ProxyError(clientErrorCode(err.code, err.reason));
    const inFlight = (socket as Socket & { _httpMessage?: unknown })._httpMessage;
    if (inFlight instanceof ObservedResponse && !inFlight.writableEnded && inFlight.observer instanceof Exchange) {
      if (inFlight.headersSent) {
        socket.destroy();
        return;
      }
      const exchange = inFlight.observer;
      exchange.answeredRaw(error, writeRawError(socket, error, { 'x-request-id': exchange.reqId }));
      return;
    }
    if (socket.bytesRead === 0) {
      writeRawError(socket, error);
      return;
    }
    refuseConnection(listener, socket, error, accessLog());
  };
}

/**
 * Answers `error` on a connection whose request was never parsed (Node's
 * parser rejected its head, plain HTTP came to a TLS port), and makes that
 * visible: an Exchange of its own with what is known (peer, listener, code,
 * status), a new request id that the answer carries too, and no route.
 */
export function refuseConnection(listener: ListenerName, socket: Socket, error: ProxyError, accessLog: boolean): void {
  const exchange = new Exchange(listener, newUuid(), '', '', '', accessLog);
  exchange.notePeer(socket);
  exchange.answeredRaw(error, writeRawError(socket, error, { 'x-request-id': exchange.reqId }));
  exchange.finish();
}

/** The code for a parser / timeout error of Node's HTTP server (`reason` is llhttp's text). */
export function clientErrorCode(code: string | undefined, reason = ''): ErrorCode {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return 'headers_too_large';
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'HPE_HEADERS_TIMEOUT':
      return 'request_timeout';
    case 'HPE_INVALID_TRANSFER_ENCODING':
      // llhttp files Content-Length with Transfer-Encoding under this code too: that is a malformed (smuggling) request, not an unknown coding.
      return /content-length/i.test(reason) ? 'bad_request' : 'not_implemented';
    default:
      return 'bad_request';
  }
}

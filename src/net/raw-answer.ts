/**
 * The sidecar's own answers written straight to a socket, for the places
 * where there is no ServerResponse: parser and timeout errors of Node's HTTP
 * servers (listeners and HTTP inside CONNECT tunnels), a refused CONNECT, a
 * refused or failed WebSocket upgrade. Same shape as errors.ts `sendError`.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { ProxyError, errorAnswer, type ErrorCode } from '../proxy/errors.ts';

/** Writes `error` as a complete HTTP/1.1 response and ends the socket. */
export function writeRawError(socket: Duplex, error: ProxyError, extraHeaders: Record<string, string> = {}): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const { body, headers } = errorAnswer(error, { ...extraHeaders, connection: 'close' });
  let head = `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? 'Error'}\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  socket.end(`${head}\r\n${body}`);
}

/** A server's 'clientError' handler: the parser or timeout error answered in the sidecar's format. */
export function answerClientError(err: Error & { code?: string; reason?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET') socket.destroy();
  else writeRawError(socket, new ProxyError(clientErrorCode(err.code, err.reason)));
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

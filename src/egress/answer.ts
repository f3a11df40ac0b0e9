/**
 * The sidecar's own answers written straight to a socket, for the places
 * where there is no ServerResponse: a refused CONNECT, and parser errors of
 * HTTP carried inside a CONNECT tunnel. Same shape as errors.ts `sendError`.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { ProxyError, type ErrorCode } from '../proxy/errors.ts';

/** Writes `error` as a complete HTTP/1.1 response and ends the socket. */
export function writeRawError(socket: Duplex, error: ProxyError, extraHeaders: Record<string, string> = {}): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ error: error.code, message: error.message });
  let head = `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? 'Error'}\r\n`;
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-sidecar-error': error.code,
    'cache-control': 'no-store',
    ...extraHeaders,
    connection: 'close',
  };
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  socket.end(`${head}\r\n${body}`);
}

/** The code for a parser / timeout error of Node's HTTP server (as listener.ts answers them). */
export function clientErrorCode(code: string | undefined): ErrorCode {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return 'headers_too_large';
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'HPE_HEADERS_TIMEOUT':
      return 'request_timeout';
    case 'HPE_INVALID_TRANSFER_ENCODING':
      return 'not_implemented';
    default:
      return 'bad_request';
  }
}

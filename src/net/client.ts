/**
 * The client's side of one exchange as the proxy core sees it. node:http's
 * IncomingMessage and ServerResponse (HTTP/1.x) satisfy these as they are, at
 * no cost; an HTTP/2 stream is adapted to them (src/h2/request.ts,
 * src/h2/response.ts). The attempt loop (proxy/proxy.ts), the response writer
 * (proxy/forward.ts), the sidecar's own answers (net/error-answer.ts), the
 * policies and static files use only what is here, so one attempt loop serves
 * both protocols instead of two copies of it.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { ResponseObserver } from './observed-response.ts';

/** The request head and body of the client. */
export interface ClientRequest {
  readonly method?: string | undefined;
  url?: string | undefined;
  /** Lower-case names; `host` is the HTTP/2 `:authority`. No pseudo-headers. */
  readonly headers: IncomingHttpHeaders;
  /** [name, value, ...] as the client sent them (HTTP/2: without pseudo-headers, cookies as one). */
  readonly rawHeaders: string[];
  /** The connection: peer address, TLS facts (tls/connection.ts). */
  readonly socket: Socket;
  /** "1.1", "1.0", or "2". */
  readonly httpVersion: string;
  /** The whole body has been read. */
  readonly complete: boolean;
  /**
   * HTTP/2: whether a body follows the head (no END_STREAM on its HEADERS).
   * Undefined on HTTP/1.x, where Content-Length / Transfer-Encoding say it.
   */
  readonly hasBody?: boolean;
  pipe<T extends NodeJS.WritableStream>(destination: T, options?: { end?: boolean }): T;
  unpipe(destination?: NodeJS.WritableStream): this;
  resume(): this;
}

/** The response the client gets: a ServerResponse, or an HTTP/2 stream's (h2/response.ts); both are streams to pipe into. */
export interface ClientResponse extends NodeJS.WritableStream {
  readonly req: ClientRequest;
  statusCode: number;
  readonly headersSent: boolean;
  readonly destroyed: boolean;
  readonly writableFinished: boolean;
  /** HTTP/1.x: keep the connection after this response. HTTP/2 has no such thing (streams are independent). */
  shouldKeepAlive: boolean;
  /** A response without Content-Length is sent in pieces that can end with trailers (chunked, or HTTP/2 frames). */
  readonly useChunkedEncodingByDefault: boolean;
  writeHead(statusCode: number, headers?: OutgoingHttpHeaders): this;
  setHeader(name: string, value: number | string | readonly string[]): this;
  flushHeaders(): void;
  /** A body string or Buffer with its encoding (a Buffer ignores it), as ServerResponse takes it. */
  end(chunk: Buffer | string, encoding: BufferEncoding, callback?: () => void): this;
  end(callback?: () => void): this;
  end(chunk: Buffer | string, callback?: () => void): this;
  addTrailers(headers: OutgoingHttpHeaders | ReadonlyArray<[string, string]>): void;
  destroy(error?: Error): this;
}

/** A client response whose close is reported to `observer` (the request's Exchange): ObservedResponse, H2Response. */
export interface ObservedClientResponse extends ClientResponse {
  observer: ResponseObserver | undefined;
}

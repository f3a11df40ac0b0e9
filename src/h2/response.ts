/**
 * The client's response on an HTTP/2 stream, with the surface of a
 * ServerResponse that the proxy core writes to (net/client.ts), over the
 * core `stream` API rather than Node's compatibility layer:
 *
 * - the head leaves with the first body bytes, or alone on flushHeaders();
 *   a response that ends before any body leaves as one HEADERS frame with
 *   END_STREAM. That is how a gRPC trailers-only answer (the sidecar's own,
 *   or an upstream's: a head that already carries `grpc-status`) stays one
 *   frame, which the compatibility layer cannot send.
 * - trailers (addTrailers) go out as a trailing HEADERS frame. The stream is
 *   opened ready for them (`waitForTrailers`) when trailers are known, the
 *   answer is gRPC, it announces `Trailer`, or the client said `TE: trailers`.
 * - connection-specific fields never go out (RFC 9113 8.2.2): nghttp2 would
 *   refuse the whole head.
 * - destroy() before the end resets the stream (INTERNAL_ERROR): the client
 *   sees a cut response, as a closed HTTP/1.1 connection says.
 *
 * It is a Writable, so static files pipe into it as into a ServerResponse;
 * write() returns false while the stream's flow-control window is full.
 */
import { constants, type ServerHttp2Stream } from 'node:http2';
import type { OutgoingHttpHeaders } from 'node:http';
import { Writable } from 'node:stream';
import type { ObservedClientResponse } from '../net/client.ts';
import type { ResponseObserver } from '../net/observed-response.ts';
import type { H2Request } from './request.ts';
import { responseFields, trailerFields } from './headers.ts';

export class H2Response extends Writable implements ObservedClientResponse {
  readonly req: H2Request;
  observer: ResponseObserver | undefined = undefined;
  statusCode = 200;
  headersSent = false;
  /** HTTP/2 streams end on their own; a stopping listener sends GOAWAY instead (h2/sessions.ts). */
  shouldKeepAlive = true;
  readonly useChunkedEncodingByDefault: boolean;
  readonly #stream: ServerHttp2Stream;
  #head: OutgoingHttpHeaders | undefined;
  /** Fields set before the head (setHeader), merged into it as ServerResponse does. */
  #preset: OutgoingHttpHeaders | undefined;
  #responded = false;
  #trailers: OutgoingHttpHeaders | undefined;
  /** The HTTP/2 stream closed (complete, reset, or its session gone). */
  #closed = false;

  constructor(req: H2Request) {
    // Stops the destroy at 'finish': the stream still has to carry the trailers and close.
    super({ autoDestroy: false, emitClose: false, highWaterMark: 64 * 1024 });
    this.req = req;
    this.#stream = req.stream;
    // HEAD has no body for trailers to follow; the writer checks the status itself.
    this.useChunkedEncodingByDefault = req.method !== 'HEAD';
    this.#stream.once('close', () => {
      this.#closed = true;
      if (!this.destroyed) this.destroy();
      this.observer?.responseClosed(this);
    });
  }

  writeHead(statusCode: number, headers?: OutgoingHttpHeaders): this {
    this.statusCode = statusCode;
    this.#head = responseFields(this.#preset, headers);
    this.headersSent = true;
    return this;
  }

  setHeader(name: string, value: number | string | readonly string[]): this {
    (this.#preset ??= {})[name.toLowerCase()] = value as string | string[];
    return this;
  }

  flushHeaders(): void {
    // A head with grpc-status is a trailers-only answer: it waits for end(), to leave as one frame.
    if (!this.#responded && this.#head?.['grpc-status'] === undefined) this.#respond(false);
  }

  addTrailers(headers: OutgoingHttpHeaders | ReadonlyArray<[string, string]>): void {
    this.#trailers = { ...this.#trailers, ...trailerFields(headers) };
  }

  /**
   * Each write completes when the HTTP/2 stream has written the bytes (its
   * own callback), not when it queued them: a caller that frees a chunk's
   * memory in its write callback (net/read-buffer.ts) must find it sent.
   * What arrives meanwhile is written on in one batch (_writev).
   */
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (!this.#responded) this.#respond(false);
    const stream = this.#stream;
    if (stream.destroyed) return callback();
    stream.write(chunk, () => callback());
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    if (!this.#responded) this.#respond(false);
    const stream = this.#stream;
    if (stream.destroyed) return callback();
    const last = chunks.length - 1;
    for (let i = 0; i < last; i++) stream.write(chunks[i].chunk);
    stream.write(chunks[last].chunk, () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.#responded) {
      if (!this.headersSent) this.writeHead(this.statusCode);
      this.#respond(this.#trailers === undefined);
      if (this.#trailers === undefined) return callback();
    }
    if (!this.#stream.destroyed) this.#stream.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Destroyed by us before the stream closed: the response is cut.
    if (!this.#closed && !this.#stream.destroyed) this.#stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    callback(error);
  }

  #respond(endStream: boolean): void {
    this.#responded = true;
    const stream = this.#stream;
    if (stream.destroyed || stream.closed) return;
    const head = this.#head ?? responseFields(this.#preset, undefined);
    head[':status'] = this.statusCode;
    const waitForTrailers = !endStream && (this.#trailers !== undefined || this.#mayTrail(head));
    if (waitForTrailers) stream.once('wantTrailers', () => stream.sendTrailers(this.#trailers ?? {}));
    stream.respond(head, { endStream, waitForTrailers });
  }

  /** Whether trailers may follow this head: gRPC always ends with them; others when announced or asked for. */
  #mayTrail(head: OutgoingHttpHeaders): boolean {
    const type = head['content-type'];
    if (typeof type === 'string' && type.startsWith('application/grpc') && !type.startsWith('application/grpc-web')) return true;
    if (head.trailer !== undefined) return true;
    const te = this.req.headers.te;
    return typeof te === 'string' && te.includes('trailers');
  }
}

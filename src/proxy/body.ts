/**
 * The request body as the tries see it. The body is never `req` itself:
 * undici destroys a body stream when a try fails, and we still need the
 * client socket to send our answer (or read the rest of the body for a retry).
 *
 * A body that may be retried is kept as it streams, up to `bufferBody`: the
 * first try gets the bytes as they arrive, and a retry gets what was kept,
 * then the rest as it arrives. Past the limit the copy is dropped and the
 * body streams on to the running try, which then cannot be retried
 * (`body_too_large`). Between tries the client is not read from, so the
 * limit is only reached by bytes a try actually consumed.
 */
import type { ClientRequest } from '../net/client.ts';
import { PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream';
import type { Socket } from 'node:net';
import type { Exchange } from '../observe/exchange.ts';
import { WrittenChunks } from '../net/read-buffer.ts';
import { watchBodySocket } from '../upstream/body-socket.ts';
import { ProxyError } from '../core/errors.ts';

/**
 * Counts request body bytes and refuses more than `limit` (0 = no limit).
 * When `freeWritten` is set (a body not kept for a retry), the chunks it
 * passed on are freed once undici's socket has written them
 * (net/read-buffer.ts says why).
 */
class BodyMeter extends Transform {
  readonly #exchange: Exchange;
  readonly #limit: number;
  readonly #written: WrittenChunks | undefined;

  constructor(exchange: Exchange, limit: number, freeWritten: boolean) {
    super();
    this.#exchange = exchange;
    this.#limit = limit;
    if (freeWritten) {
      this.#written = new WrittenChunks();
      watchBodySocket(this, this);
    }
  }

  upstreamSocket(socket: Socket): void {
    this.#written?.useSocket(socket);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#exchange.bytesIn += chunk.length;
    if (this.#limit > 0 && this.#exchange.bytesIn > this.#limit) {
      callback(new ProxyError('payload_too_large'));
      return;
    }
    const written = this.#written;
    if (written === undefined) return callback(null, chunk);
    written.freeWritten(this.readableLength);
    written.add(chunk);
    callback(null, chunk);
  }
}

/** The body of one request, handed to each try. */
export interface RequestBody {
  /** What the next try sends: null (no body), the kept bytes, or a stream. */
  forAttempt(): Readable | Buffer | null;
  /** True while another try could still send the whole body. */
  readonly replayable: boolean;
}

const NO_BODY: RequestBody = { forAttempt: () => null, replayable: true };

function hasBody(req: ClientRequest): boolean {
  if (req.hasBody !== undefined) return req.hasBody;
  const length = req.headers['content-length'];
  if (length !== undefined) return length !== '0';
  return req.headers['transfer-encoding'] !== undefined;
}

/**
 * The body of `req`, metered against `maxBody`; kept for retries up to
 * `keepLimit` bytes (0 = stream only, never replayable).
 */
export function requestBody(req: ClientRequest, exchange: Exchange, maxBody: number, keepLimit: number): RequestBody {
  if (!hasBody(req)) return NO_BODY;
  const meter = new BodyMeter(exchange, maxBody, keepLimit <= 0);
  req.pipe(meter);
  meter.on('error', () => req.unpipe(meter));
  if (keepLimit <= 0) {
    let handed = false;
    return {
      forAttempt: () => (handed ? null : ((handed = true), meter)),
      replayable: false,
    };
  }
  return new ReplayableBody(meter, keepLimit);
}

/** A streamed body kept up to a limit so that a retry can send it again. */
export class ReplayableBody implements RequestBody {
  readonly #source: Readable;
  readonly #limit: number;
  #kept: Buffer[] = [];
  #keptBytes = 0;
  #overflowed = false;
  #ended = false;
  #error: Error | undefined;
  #current: PassThrough | undefined;

  constructor(source: Readable, limit: number) {
    this.#source = source;
    this.#limit = limit;
    source.pause(); // not read until a try takes it
    source.on('data', (chunk: Buffer) => this.#onData(chunk));
    source.once('end', () => {
      this.#ended = true;
      this.#current?.end();
    });
    source.once('error', (err: Error) => {
      this.#error = err;
      this.#current?.destroy(err);
    });
  }

  get replayable(): boolean {
    return !this.#overflowed && this.#error === undefined;
  }

  forAttempt(): Readable | Buffer | null {
    if (this.#error) return failedStream(this.#error);
    if (this.#ended && !this.#overflowed) return this.#keptBytes === 0 ? null : Buffer.concat(this.#kept);
    const stream = new PassThrough();
    for (const chunk of this.#kept) stream.write(chunk);
    if (this.#ended) stream.end();
    this.#current = stream;
    stream.once('close', () => {
      if (this.#current !== stream) return;
      this.#current = undefined;
      this.#source.pause();
    });
    this.#source.resume();
    return stream;
  }

  #onData(chunk: Buffer): void {
    if (!this.#overflowed) {
      this.#keptBytes += chunk.length;
      if (this.#keptBytes > this.#limit) {
        this.#overflowed = true;
        this.#kept = [];
      } else {
        this.#kept.push(chunk);
      }
    }
    const stream = this.#current;
    if (!stream || stream.destroyed) return;
    if (!stream.write(chunk)) {
      this.#source.pause();
      stream.once('drain', () => {
        if (this.#current === stream) this.#source.resume();
      });
    }
  }
}

function failedStream(error: Error): Readable {
  const stream = new PassThrough();
  stream.destroy(error);
  return stream;
}

/**
 * A response body compressed on its way to the client.
 *
 * Most answers are small and arrive whole within the event-loop turn of
 * their head (libuv reads a socket until it is empty). Such a body, up to
 * ONE_SHOT_LIMIT, is compressed in one call on the event loop, as NGINX does
 * in its worker, and leaves with the head in one write. For the bench's
 * 64 KiB JSON (node:zlib alone, 300 calls each, two runs on a shared 2-core
 * machine): gzip 5 took 0.38 ms of CPU in one call against 0.46-0.53 ms
 * through a stream (libuv's thread pool, a hop per call), brotli 4 took
 * 0.44-0.71 ms against 0.82-0.98 ms.
 *
 * Anything else streams: at the end of the first turn the head goes out
 * and chunks go into a node:zlib encoder, whose output is written to the
 * client's response. Backpressure holds both ways: while the client's socket
 * is full the encoder is paused, its buffers fill, and write() says false,
 * so the writer pauses the upstream (forward.ts); nothing is buffered beyond
 * those few buffers and the first turn's chunks.
 *
 * An encoder keeps what it has not yet emitted, which would hold back a
 * server-sent event or the last lines of a slow stream. So once per turn of
 * the event loop in which chunks came, the encoder is flushed (a sync flush:
 * the stream goes on with its dictionary): when the upstream pauses,
 * everything it sent is on its way to the client. Chunks that arrive
 * together are flushed together, so a fast body pays about one flush per
 * socket read (a few bytes each).
 */
import type { ClientResponse } from '../net/client.ts';
import type { HotSeries } from '../observe/metrics.ts';
import type { Coding } from './accept-encoding.ts';
import { flushKind, type Compression, type Encoder } from './compression.ts';
import type { BodyFilter, ResponseHeaders, SentBytes } from './policy.ts';

/** The most a body may hold to be compressed in one call on the event loop (about 2 ms of CPU at gzip 5). */
export const ONE_SHOT_LIMIT = 256 * 1024;

/** Byte counters of one coding on one route. */
export interface CodingBytes {
  readonly in: HotSeries;
  readonly out: HotSeries;
}

export class EncodedBody implements BodyFilter {
  readonly #res: ClientResponse;
  readonly #compression: Compression;
  readonly #coding: Coding;
  readonly #sent: SentBytes;
  readonly #bytes: CodingBytes;
  /** The first turn's chunks, while the body may still be compressed in one call. */
  #held: Buffer[] | undefined = [];
  #heldBytes = 0;
  #encoder: Encoder | undefined = undefined;
  #flushQueued = false;
  #ended = false;

  constructor(res: ClientResponse, compression: Compression, coding: Coding, sent: SentBytes, bytes: CodingBytes) {
    this.#res = res;
    this.#compression = compression;
    this.#coding = coding;
    this.#sent = sent;
    this.#bytes = bytes;
    setImmediate(firstTurnOver, this);
  }

  write(chunk: Buffer): boolean {
    this.#bytes.in.inc(chunk.length);
    const held = this.#held;
    if (held !== undefined) {
      held.push(chunk);
      this.#heldBytes += chunk.length;
      if (this.#heldBytes > ONE_SHOT_LIMIT) this.#stream();
      return true;
    }
    const more = this.#encoder!.write(chunk);
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      setImmediate(flushQueued, this);
    }
    return more;
  }

  once(event: 'drain', listener: () => void): unknown {
    // Only an encoder ever says write() false.
    return this.#encoder!.once(event, listener);
  }

  end(trailers: ResponseHeaders | undefined, done: () => void): void {
    this.#ended = true;
    const held = this.#held;
    if (held !== undefined) {
      // The whole body came in the first turn: one call, and the head leaves with it.
      this.#held = undefined;
      const out = this.#compression.encodeSync(this.#coding, held.length === 1 ? held[0] : Buffer.concat(held, this.#heldBytes));
      this.#counted(out.length);
      if (trailers) this.#res.addTrailers(trailers);
      this.#res.end(out);
      done();
      return;
    }
    const encoder = this.#encoder!;
    encoder.once('end', () => {
      if (trailers) this.#res.addTrailers(trailers);
      this.#res.end();
      done();
    });
    encoder.end();
  }

  destroy(): void {
    this.#ended = true;
    this.#held = undefined;
    this.#encoder?.destroy();
  }

  /** The first turn is over and the body is not: send the head, and stream what came and what comes. */
  firstTurnOver(): void {
    if (this.#held === undefined || this.#ended) return;
    this.#res.flushHeaders();
    this.#stream();
    this.flush();
  }

  /** Emits what the encoder holds, unless the body ended meanwhile (end() flushes everything anyway). */
  flush(): void {
    this.#flushQueued = false;
    if (!this.#ended) this.#encoder?.flush(flushKind(this.#coding));
  }

  /** From here on the body goes through an encoder, the held chunks first. */
  #stream(): void {
    const encoder = this.#compression.encoder(this.#coding);
    this.#encoder = encoder;
    encoder.on('data', (out: Buffer) => this.#output(out));
    // Not expected of a compressor; if it happens the answer cannot be finished: cut it.
    encoder.on('error', () => this.#res.destroy());
    for (const chunk of this.#held!) encoder.write(chunk);
    this.#held = undefined;
  }

  #output(out: Buffer): void {
    this.#counted(out.length);
    if (this.#res.write(out)) return;
    this.#encoder!.pause();
    this.#res.once('drain', () => this.#encoder!.resume());
  }

  #counted(bytes: number): void {
    this.#sent.bytesOut += bytes;
    this.#bytes.out.inc(bytes);
  }
}

function firstTurnOver(body: EncodedBody): void {
  body.firstTurnOver();
}

function flushQueued(body: EncodedBody): void {
  body.flush();
}

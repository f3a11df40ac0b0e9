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

  /**
   * Formats what is queued and hands it to the sink in chunks of at most
   * `maxBytes`. A chunk is first sized by characters (a line has at least as
   * many bytes as characters) and joined, then its bytes are counted once;
   * only a chunk that non-ASCII text made too long is re-cut line by line.
   * Counting each line's bytes as it came flattened every line on its own
   * (the lines are built by concatenation), about a quarter of the access
   * line's cost.
   */
  flush(): void {
    const records = this.#records;
    if (records.length === 0) return;
    this.#records = [];
    const lines = records.map(this.#format);
    const maxBytes = this.#maxBytes;
    let start = 0;
    while (start < lines.length) {
      let end = start;
      let chars = 0;
      while (end < lines.length && chars + lines[end].length <= maxBytes) chars += lines[end++].length;
      if (end === start) {
        this.#sink.write(lines[start++]); // longer than maxBytes: written alone
        continue;
      }
      let chunk = joinRange(lines, start, end);
      if (Buffer.byteLength(chunk) > maxBytes) {
        // The first line goes in whatever its size (a line over maxBytes is written alone).
        let bytes = Buffer.byteLength(lines[start]);
        for (end = start + 1; end < lines.length; end++) {
          const next = Buffer.byteLength(lines[end]);
          if (bytes + next > maxBytes) break;
          bytes += next;
        }
        chunk = joinRange(lines, start, end);
      }
      this.#sink.write(chunk);
      start = end;
    }
  }
}

function joinRange(lines: string[], start: number, end: number): string {
  return start === 0 && end === lines.length ? lines.join('') : lines.slice(start, end).join('');
}

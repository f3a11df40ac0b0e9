/**
 * Hands the memory of a socket read back as soon as its bytes have been
 * written on, instead of when V8 next finds the Buffer dead.
 *
 * Why: each read of an upstream socket is a fresh ArrayBuffer (up to 64 KiB)
 * outside the JS heap, and V8 frees it only in a collection. Young
 * collections are paced by JS allocation, which a big body barely does, so
 * relayed reads piled up until external-memory pressure forced full
 * collections. Releasing them as they are written, with 1 MiB responses
 * (wrk, 10 connections, the bench's config, sidecar pinned to one core):
 * 490 -> 1,000 req/s, CPU 2,000 -> 950 us per response, peak RSS 200 -> 125 MB.
 *
 * It is safe only while nothing else can read the ArrayBuffer any more.
 * `releaseAfterWrite` accepts an undici body chunk only when it runs to the
 * end of its ArrayBuffer, which is then one socket read of one response
 * (undici sends one request per connection at a time):
 * - nothing follows the chunk in that read;
 * - what precedes it is that response's head, already parsed into strings
 *   (undici also keeps the raw head as `controller.rawHeaders`, which we never
 *   read), or earlier body bytes of the same response, written to the same
 *   socket before this chunk, and a socket completes writes in order;
 * - the callback runs once the socket has taken the bytes (or the write
 *   failed before the kernel saw them): libuv no longer points into them.
 *
 * Small chunks are left to the collector: their memory is little, and a
 * callback per write would cost more than it saves.
 */
import { TEXT_BODY_MAX } from './text-body.ts';

/**
 * A write callback that frees `chunk`'s memory, or undefined when the chunk
 * is small or shares its ArrayBuffer with bytes after it.
 */
export function releaseAfterWrite(chunk: Buffer): (() => void) | undefined {
  if (!isReleasable(chunk) || chunk.byteOffset + chunk.length !== chunk.buffer.byteLength) return undefined;
  return () => release(chunk);
}

/**
 * Request-body chunks handed to undici, freed once its socket has written
 * them (uploads relay reads the same way downloads do). undici gives no
 * callback per body chunk, but a socket whose `writableLength` is 0 has no
 * write queued or in flight: every chunk given to it before is written.
 *
 * Only chunks that are the whole of their ArrayBuffer are freed: node:http
 * copies each piece of a request body into a Buffer of its own, so nothing
 * else can read one once undici has written it. The body must not be kept
 * for a retry either (the caller's decision).
 */
/** Most chunks a body keeps track of (16 MiB of 64 KiB reads). */
const MAX_TRACKED = 256;

/** What WrittenChunks reads of undici's socket. */
interface WritingSocket {
  readonly writableLength: number;
}

export class WrittenChunks {
  #socket: WritingSocket | undefined;
  /** Chunks passed on to undici's body stream, oldest first. */
  #handed: Buffer[] = [];

  /** The socket undici writes the body to; chunks handed while another socket had it are forgotten. */
  useSocket(socket: WritingSocket): void {
    if (socket === this.#socket) return;
    this.#socket = socket;
    this.#handed = [];
  }

  /**
   * A chunk passed on to the stream undici reads. Before the socket is known
   * nothing is kept (useSocket would forget it), and at most MAX_TRACKED
   * chunks are: a socket that never drains must not make this list hold the
   * whole body. A chunk forgotten is left to the collector.
   */
  add(chunk: Buffer): void {
    if (this.#socket === undefined) return;
    if (this.#handed.length >= MAX_TRACKED) this.#handed.shift();
    this.#handed.push(chunk);
  }

  /**
   * Frees the chunks that have been written. `buffered` is how many of the
   * newest bytes passed on are still waiting in the stream (its
   * readableLength): undici has not taken those yet.
   */
  freeWritten(buffered: number): void {
    const socket = this.#socket;
    if (socket === undefined || socket.writableLength !== 0) return;
    const handed = this.#handed;
    let taken = handed.length;
    while (taken > 0 && buffered > 0) buffered -= handed[--taken].length;
    if (taken === 0) return;
    for (let i = 0; i < taken; i++) {
      const chunk = handed[i];
      if (isReleasable(chunk) && chunk.byteOffset === 0 && chunk.length === chunk.buffer.byteLength) release(chunk);
    }
    this.#handed = handed.slice(taken);
  }
}

/** Big enough to be worth freeing early, and in memory that can be detached. */
function isReleasable(chunk: Buffer): boolean {
  return chunk.length > TEXT_BODY_MAX && chunk.buffer instanceof ArrayBuffer;
}

/** Frees the memory under an isReleasable chunk now: every view of it becomes empty. */
function release(chunk: Buffer): void {
  try {
    // Detaching frees the backing store now; the new zero-length buffer is dropped.
    (chunk.buffer as ArrayBuffer).transfer(0);
  } catch {
    // Not detachable (already detached, or pinned by its owner): the collector frees it.
  }
}

/**
 * A file too large for the cache, streamed to the client with backpressure,
 * as it is or through an encoder (static-encode.ts). A client that goes away
 * destroys the read stream (and so closes the file); a file that turns out
 * shorter than announced (it shrank meanwhile) cuts the answer, so the client
 * sees a broken body rather than a short one.
 */
import type { ClientResponse } from '../net/client.ts';
import type { FileHandle } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { Encoder } from '../policy/compression.ts';

/** Read in one piece up to this; larger files stream (fs.ReadStream's default is 64 KiB too). */
export const STREAM_CHUNK = 64 * 1024;

/** Bytes of one streamed answer: read from the file, and sent (the same unless encoded). */
export interface Streamed {
  readonly read: number;
  readonly sent: number;
}

/** Sends bytes `start`..`end` (inclusive) of the file, `length` of them, and ends the response. */
export async function streamFile(res: ClientResponse, handle: FileHandle, start: number, end: number, length: number, encoder?: Encoder): Promise<Streamed> {
  const stream = handle.createReadStream({ start, end, highWaterMark: STREAM_CHUNK });
  let encoded = 0;
  try {
    if (encoder) {
      encoder.on('data', (chunk: Buffer) => (encoded += chunk.length));
      await pipeline(stream, encoder, res, { end: false });
    } else {
      await pipeline(stream, res, { end: false });
    }
    if (stream.bytesRead === length) res.end();
    else res.destroy();
  } catch {
    res.destroy();
  }
  return { read: stream.bytesRead, sent: encoder ? encoded : stream.bytesRead };
}

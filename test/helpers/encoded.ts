/**
 * Compressed answers, for the compression tests: a request whose raw body is
 * kept as it came (undici's request() never decodes), and that body decoded.
 */
import type { IncomingHttpHeaders } from 'node:http';
import zlib from 'node:zlib';
import { request, type Dispatcher } from 'undici';

export interface RawAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The body bytes exactly as the sidecar sent them. */
  readonly body: Buffer;
}

/** GET (or `method`) `url` with `headers`; the body is read whole, undecoded. */
export async function fetchRaw(url: string, headers: Record<string, string> = {}, method: Dispatcher.HttpMethod = 'GET'): Promise<RawAnswer> {
  const response = await request(url, { method, headers });
  const body = Buffer.from(await response.body.arrayBuffer());
  return { status: response.statusCode, headers: response.headers, body };
}

/** A body decoded from its Content-Encoding (none: as it is). */
export function decoded(answer: RawAnswer): Buffer {
  switch (answer.headers['content-encoding']) {
    case undefined:
      return answer.body;
    case 'gzip':
      return zlib.gunzipSync(answer.body);
    case 'br':
      return zlib.brotliDecompressSync(answer.body);
    case 'zstd':
      return zlib.zstdDecompressSync(answer.body);
    default:
      throw new Error(`unexpected content-encoding ${String(answer.headers['content-encoding'])}`);
  }
}

/** A compressible text body of `size` bytes: JSON-like lines with some variety. */
export function textBody(size: number): Buffer {
  const lines: string[] = [];
  let length = 0;
  for (let i = 0; length < size; i++) {
    const line = `{"id":${i},"name":"item ${i % 97}","tags":["a${i % 7}","b${i % 13}"],"price":${(i * 37) % 1000}}\n`;
    lines.push(line);
    length += line.length;
  }
  return Buffer.from(lines.join('')).subarray(0, size);
}

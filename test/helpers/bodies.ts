/** Bodies for tests of relayed bytes: random content, its hash, and an irregular way to send it. */
import { createHash } from 'node:crypto';

export const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/**
 * Writes `body` in pieces of varied size, three at once and then a tick
 * later, and ends the stream: the receiving proxy's reads then vary in size
 * and in where they end.
 */
export function writeInPieces(out: { write(chunk: Buffer): unknown; end(): unknown }, body: Buffer): void {
  const sizes = [20_000, 33_000, 150_000, 17_500, 1_000];
  let offset = 0;
  let piece = 0;
  const more = () => {
    for (let burst = 0; burst < 3 && offset < body.length; burst++) {
      const size = sizes[piece++ % sizes.length] as number;
      out.write(body.subarray(offset, offset + size));
      offset += size;
    }
    if (offset < body.length) setImmediate(more);
    else out.end();
  };
  more();
}

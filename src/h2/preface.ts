/**
 * Cleartext HTTP/2 with prior knowledge (RFC 9113 3.3) beside HTTP/1.1 on one
 * port: a client that knows the server speaks h2 opens with the connection
 * preface, `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`, which no HTTP/1.1 request
 * line can be. The first bytes of each connection decide where it goes; they
 * are put back for the server that takes it. The same test tells an h2c
 * preface inside an egress CONNECT tunnel (egress/connect.ts).
 */
import type { Socket } from 'node:net';

export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/**
 * 'h2' when `bytes` begin with the preface, 'other' when they cannot, and
 * undefined while they are still a proper beginning of it (wait for more).
 */
export function prefaceOf(bytes: Buffer): 'h2' | 'other' | undefined {
  const length = Math.min(bytes.length, H2_PREFACE.length);
  if (bytes.compare(H2_PREFACE, 0, length, 0, length) !== 0) return 'other';
  return length === H2_PREFACE.length ? 'h2' : undefined;
}

/**
 * Reads a fresh connection's first bytes and hands it to `handoff` with its
 * protocol ('h2' or 'http/1.1'), every byte still to be read. A connection
 * that sends nothing within `timeoutMs` (the listener's headersTimeout, which
 * an HTTP/1.1 client has for its whole head) is closed.
 */
export function sortByPreface(raw: Socket, timeoutMs: number, handoff: (socket: Socket, protocol: 'h2' | 'http/1.1') => void): void {
  // Errors of a connection that never got further are nobody's business but its own.
  const ignore = (): void => {};
  raw.on('error', ignore);
  if (timeoutMs > 0) raw.setTimeout(timeoutMs, () => raw.destroy());
  let seen: Buffer = Buffer.alloc(0);
  const peek = (): void => {
    const chunk = raw.read() as Buffer | null;
    if (chunk === null) return void raw.once('readable', peek);
    seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
    const kind = prefaceOf(seen);
    if (kind === undefined) return void raw.once('readable', peek);
    raw.setTimeout(0);
    raw.off('error', ignore);
    raw.unshift(seen);
    handoff(raw, kind === 'h2' ? 'h2' : 'http/1.1');
  };
  raw.once('readable', peek);
}

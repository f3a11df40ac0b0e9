/**
 * Tells a reset of a reused keep-alive connection from any other reset.
 *
 * undici's errors do not say whether the socket had served a request before
 * (`SocketError` carries bytesRead/bytesWritten, a plain ECONNRESET carries
 * nothing), and a dispatch handler never sees its socket. undici does publish
 * every request head it writes on the `undici:client:sendHeaders` diagnostics
 * channel, with the socket. So, per socket, we count the requests written and
 * remember `bytesRead` when the latest one was written; an error on that
 * socket is marked "reused reset" when the request it kills was not the
 * first on the socket and not one response byte arrived since it was written.
 *
 * The mark is put on the error object itself from an 'error' listener on the
 * socket. undici's own listener (added first) only records the error there;
 * it fails the running request on 'close', which comes later, so the mark is
 * in place before the request handler sees the error. Both the ECONNRESET
 * path and the "other side closed" path (FIN, where undici destroys the socket
 * with a `SocketError`) emit 'error' on the socket.
 */
import { subscribe } from 'node:diagnostics_channel';
import type { Socket } from 'node:net';

interface SocketUse {
  written: number;
  bytesReadAtWrite: number;
}

const uses = new WeakMap<Socket, SocketUse>();
const reusedResets = new WeakSet<object>();

function onSendHeaders(message: unknown): void {
  const socket = (message as { socket?: Socket }).socket;
  if (!socket || typeof socket.on !== 'function') return;
  let use = uses.get(socket);
  if (!use) {
    const fresh: SocketUse = { written: 0, bytesReadAtWrite: 0 };
    use = fresh;
    uses.set(socket, fresh);
    socket.on('error', (err: unknown) => {
      if (fresh.written > 1 && socket.bytesRead === fresh.bytesReadAtWrite && typeof err === 'object' && err !== null) {
        reusedResets.add(err);
      }
    });
  }
  use.written++;
  use.bytesReadAtWrite = socket.bytesRead;
}

subscribe('undici:client:sendHeaders', onSendHeaders);

/** True when `err` (an undici error, or the cause of our ProxyError) killed a reused connection before any response byte. */
export function isReusedSocketReset(err: unknown): boolean {
  return typeof err === 'object' && err !== null && reusedResets.has(err);
}

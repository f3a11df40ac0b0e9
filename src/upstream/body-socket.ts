/**
 * Tells a request body stream which socket undici writes it to. A dispatch
 * handler never sees its socket, but undici publishes every request head it
 * writes on the `undici:client:sendHeaders` diagnostics channel with the
 * request (whose `body` is the stream we gave it) and the socket; the body
 * follows on that socket (proxy/body.ts frees written chunks with it).
 */
import { subscribe } from 'node:diagnostics_channel';
import type { Socket } from 'node:net';

export interface BodySocketWatcher {
  upstreamSocket(socket: Socket): void;
}

const watchers = new WeakMap<object, BodySocketWatcher>();

/** Calls `watcher` with the socket each time undici starts writing a request whose body is `body`. */
export function watchBodySocket(body: object, watcher: BodySocketWatcher): void {
  watchers.set(body, watcher);
}

function onSendHeaders(message: unknown): void {
  const { request, socket } = message as { request?: { body?: unknown }; socket?: Socket };
  const body = request?.body;
  if (typeof body !== 'object' || body === null || socket === undefined) return;
  // An HTTP/2 connection is shared by streams, and each stream queues its body in nghttp2:
  // an empty socket queue says nothing of this body's chunks (proxy/body.ts must not free them).
  if ((socket as { alpnProtocol?: unknown }).alpnProtocol === 'h2') return;
  watchers.get(body)?.upstreamSocket(socket);
}

subscribe('undici:client:sendHeaders', onSendHeaders);

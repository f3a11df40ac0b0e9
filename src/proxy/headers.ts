/**
 * Outgoing messages are rebuilt from the parsed request, never copied raw:
 * hop-by-hop headers go (RFC 9110 7.6.1, including every name listed in
 * Connection), the forwarding headers and the request id are set, and the
 * route's header rules apply last.
 */
import { randomBytes, randomFillSync } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { HeaderRules } from '../config/compile.ts';

/**
 * Headers that describe one connection, not the message (RFC 9110 7.6.1, RFC
 * 9112). Not `Trailer`: it announces end-to-end fields, relayed with the
 * upstream's trailers (forward.ts).
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

/** Fields never relayed as trailers: framing, routing and hop-by-hop fields (RFC 9110 6.5.1). */
const NOT_TRAILERS = new Set([...HOP_BY_HOP, 'trailer', 'content-length', 'content-type', 'content-encoding', 'content-range', 'host', 'set-cookie']);

/** Headers the sidecar sets itself, so what the client sent is not copied. */
const REBUILT = new Set(['host', 'x-request-id', 'via', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'traceparent', 'expect']);

/**
 * Our Via entry. The pseudonym carries a per-process id so that a loop through
 * this very process is recognised while a chain of two sidecars (one app's
 * egress to another's ingress) is not mistaken for one.
 */
export const VIA_TOKEN = `1.1 sidecar-${randomBytes(4).toString('hex')}`;

/** Connection values that name no header beyond the hop-by-hop ones: the usual ones, on nearly every message. */
const PLAIN_CONNECTION = new Set(['keep-alive', 'close', 'Keep-Alive', 'Close']);

/**
 * Names listed in a Connection header value ("close, x-foo" -> {close, x-foo});
 * undefined when there are none to drop beyond HOP_BY_HOP.
 */
export function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined || (typeof value === 'string' && PLAIN_CONNECTION.has(value))) return undefined;
  const tokens = new Set<string>();
  for (const part of Array.isArray(value) ? value : [value]) {
    for (const token of part.split(',')) {
      const name = token.trim().toLowerCase();
      if (name) tokens.add(name);
    }
  }
  return tokens;
}

export interface ForwardedInfo {
  /** Host header value sent upstream. */
  readonly host: string;
  /** The client's address (appended to X-Forwarded-For). */
  readonly clientAddress: string | undefined;
  /**
   * The client is one of the listener's `trustedProxies`: its X-Forwarded-*
   * describe the real client and are kept. From anyone else they are
   * replaced, or anybody could claim `https` or any address.
   */
  readonly trusted: boolean;
  /** Scheme the client used to reach us. */
  readonly proto: 'http' | 'https';
  /** The Host the client asked for (X-Forwarded-Host). */
  readonly originalHost: string | undefined;
  readonly requestId: string;
  /** Keep `upgrade` / `connection: upgrade` (WebSocket hand-off). */
  readonly keepUpgrade?: boolean;
  /**
   * `tls.forwardClientCert`: the header (lower case) that carries the verified
   * client certificate. What the client sent under that name is always
   * dropped; `value` (absent without a verified certificate) is set instead.
   */
  readonly clientCert?: { readonly header: string; readonly value: string | undefined };
  /** The traceparent to send, decided by tracing (tracing/context.ts); absent: the client's, or a new one. */
  readonly traceparent?: string;
  /**
   * `TE: trailers` goes on: the client asked for trailers and the upstream
   * speaks HTTP/2, where it is the one TE value allowed (RFC 9113 8.2.2; gRPC
   * servers want it). To HTTP/1.1 it is hop-by-hop, and dropped.
   */
  readonly teTrailers?: boolean;
  /** The `grpc-timeout` to send instead of the client's: what is left of the deadline (h2/grpc.ts). */
  readonly grpcTimeout?: string;
}

/** The request id: the incoming `x-request-id` when it is sane, else a new UUID. */
export function requestIdOf(headers: IncomingHttpHeaders): string {
  const incoming = headers['x-request-id'];
  if (typeof incoming === 'string' && incoming.length > 0 && incoming.length <= 200 && /^[\x21-\x7e]+$/.test(incoming)) {
    return incoming;
  }
  return newUuid();
}

/**
 * Random (version 4) UUIDs, made UUIDS_PER_FILL at a time: their random bytes
 * in one call, their text in one buffer, so each id is one flat 36-character
 * string cut from it. crypto.randomUUID() buffers its random bytes too, but
 * builds each id by concatenating 20 pieces, a string every later use (the
 * header, the JSON of the access line) has to flatten first: with one
 * JSON.stringify, 290 -> 173 ns per id in a loop. A heap profile under load
 * put about 580 bytes per request on randomUUID(); ours allocates the one
 * 36-character string.
 */
const UUIDS_PER_FILL = 128;
const uuidBytes = Buffer.allocUnsafe(16 * UUIDS_PER_FILL);
const uuidText = Buffer.allocUnsafe(36 * UUIDS_PER_FILL);
const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');
const DASH = 0x2d;
let nextUuid = UUIDS_PER_FILL;

function fillUuids(): void {
  randomFillSync(uuidBytes);
  for (let id = 0; id < UUIDS_PER_FILL; id++) {
    const bytes = id * 16;
    uuidBytes[bytes + 6] = (uuidBytes[bytes + 6] & 0x0f) | 0x40; // version 4
    uuidBytes[bytes + 8] = (uuidBytes[bytes + 8] & 0x3f) | 0x80; // variant 10 (RFC 9562)
    let at = id * 36;
    for (let i = 0; i < 16; i++) {
      if (i === 4 || i === 6 || i === 8 || i === 10) uuidText[at++] = DASH;
      const byte = uuidBytes[bytes + i];
      uuidText[at++] = HEX_DIGITS[byte >> 4];
      uuidText[at++] = HEX_DIGITS[byte & 0x0f];
    }
  }
  nextUuid = 0;
}

/** A new random UUID, e.g. `9b2c0e62-3f4a-4d1e-8c57-0a1b2c3d4e5f`. */
export function newUuid(): string {
  if (nextUuid === UUIDS_PER_FILL) fillUuids();
  const start = 36 * nextUuid++;
  return uuidText.toString('latin1', start, start + 36);
}

/** Random bytes for ids, drawn 24 at a time from a pool refilled once per 256 requests. */
const randomPool = Buffer.allocUnsafe(24 * 256);
let randomOffset = randomPool.length;

/** `bytes` random bytes as lower-case hex (trace and span ids). */
export function randomHex(bytes: number): string {
  if (randomOffset + bytes > randomPool.length) {
    randomFillSync(randomPool);
    randomOffset = 0;
  }
  randomOffset += bytes;
  return randomPool.toString('hex', randomOffset - bytes, randomOffset);
}

/**
 * New W3C traceparents (version 00, random trace and parent ids, sampled),
 * made TRACEPARENTS_PER_FILL at a time as the UUIDs are: random bytes in one
 * call, text in one buffer, each traceparent one flat 55-character string cut
 * from it. randomBytes() per request cost 4% of the proxy's CPU in a profile,
 * two randomUUID() calls still 2%; two hex strings from a pool and their
 * concatenation made a string the access line's check (access-line.ts
 * traceIdOf) had to flatten first.
 */
const TRACEPARENTS_PER_FILL = 128;
const TRACEPARENT_LENGTH = 55;
const traceparentBytes = Buffer.allocUnsafe(24 * TRACEPARENTS_PER_FILL);
const traceparentText = Buffer.allocUnsafe(TRACEPARENT_LENGTH * TRACEPARENTS_PER_FILL);
let nextTraceparent = TRACEPARENTS_PER_FILL;

function fillTraceparents(): void {
  randomFillSync(traceparentBytes);
  for (let id = 0; id < TRACEPARENTS_PER_FILL; id++) {
    const bytes = id * 24;
    let at = id * TRACEPARENT_LENGTH;
    traceparentText[at++] = 0x30; // "00-": version 00
    traceparentText[at++] = 0x30;
    traceparentText[at++] = DASH;
    for (let i = 0; i < 24; i++) {
      if (i === 16) traceparentText[at++] = DASH; // 16 bytes of trace id, then 8 of parent id
      const byte = traceparentBytes[bytes + i];
      traceparentText[at++] = HEX_DIGITS[byte >> 4];
      traceparentText[at++] = HEX_DIGITS[byte & 0x0f];
    }
    traceparentText[at++] = DASH; // "-01": sampled
    traceparentText[at++] = 0x30;
    traceparentText[at++] = 0x31;
  }
  nextTraceparent = 0;
}

/** A new W3C traceparent, e.g. `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`. */
export function newTraceparent(): string {
  if (nextTraceparent === TRACEPARENTS_PER_FILL) fillTraceparents();
  const start = TRACEPARENT_LENGTH * nextTraceparent++;
  return traceparentText.toString('latin1', start, start + TRACEPARENT_LENGTH);
}

/**
 * The header list (flat [name, value, ...], as undici takes it) for the
 * upstream request built from the client's raw headers.
 */
export function upstreamRequestHeaders(
  rawHeaders: readonly string[],
  headers: IncomingHttpHeaders,
  info: ForwardedInfo,
  rules: HeaderRules | undefined,
): string[] {
  const dropped = connectionTokens(headers.connection);
  const certHeader = info.clientCert?.header;
  const grpcTimeout = info.grpcTimeout;
  const out: string[] = ['host', info.host];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i].toLowerCase();
    // No Trailer upstream: the body is streamed to undici, which sends no request trailers.
    if (HOP_BY_HOP.has(name) || REBUILT.has(name) || name === 'trailer') continue;
    if (dropped?.has(name) || name === certHeader) continue;
    if (rules?.remove.has(name)) continue;
    if (grpcTimeout !== undefined && name === 'grpc-timeout') continue;
    out.push(name, rawHeaders[i + 1]);
  }
  if (info.teTrailers) out.push('te', 'trailers');
  if (grpcTimeout !== undefined) out.push('grpc-timeout', grpcTimeout);
  if (info.keepUpgrade && headers.upgrade) out.push('connection', 'upgrade', 'upgrade', String(headers.upgrade));

  const trusted = info.trusted;
  const forwardedFor = trusted ? headers['x-forwarded-for'] : undefined;
  const client = info.clientAddress ?? 'unknown';
  out.push('x-forwarded-for', forwardedFor ? `${joinValue(forwardedFor)}, ${client}` : client);
  out.push('x-forwarded-proto', (trusted && joinValue(headers['x-forwarded-proto'])) || info.proto);
  const forwardedHost = (trusted && joinValue(headers['x-forwarded-host'])) || info.originalHost;
  if (forwardedHost) out.push('x-forwarded-host', forwardedHost);
  const via = headers.via;
  out.push('via', via ? `${joinValue(via)}, ${VIA_TOKEN}` : VIA_TOKEN);
  out.push('x-request-id', info.requestId);
  if (info.traceparent !== undefined) out.push('traceparent', info.traceparent);
  else {
    // A created traceparent is kept on the request, so a retry carries the same trace.
    if (typeof headers.traceparent !== 'string' || !headers.traceparent) headers.traceparent = newTraceparent();
    out.push('traceparent', headers.traceparent);
  }
  if (certHeader !== undefined && info.clientCert!.value !== undefined) out.push(certHeader, info.clientCert!.value);
  if (rules) applyAdds(out, rules);
  return out;
}

/** Response headers for the client, from undici's parsed upstream headers. */
export function clientResponseHeaders(
  upstream: Record<string, string | string[] | undefined>,
  rules: HeaderRules | undefined,
): Record<string, string | string[]> {
  const dropped = connectionTokens(upstream.connection);
  const out: Record<string, string | string[]> = {};
  for (const name in upstream) {
    const value = upstream[name];
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    if (dropped?.has(name)) continue;
    if (rules?.remove.has(name)) continue;
    out[name] = value;
  }
  if (rules) for (const [name, value] of rules.add) out[name] = value;
  return out;
}

/** The upstream's trailers that go on to the client (the route's `remove` applies); undefined when none do. */
export function clientTrailers(
  upstream: Record<string, string | string[] | undefined>,
  rules: HeaderRules | undefined,
): Record<string, string | string[]> | undefined {
  let out: Record<string, string | string[]> | undefined;
  for (const name in upstream) {
    const value = upstream[name];
    if (value === undefined || NOT_TRAILERS.has(name) || rules?.remove.has(name)) continue;
    (out ??= {})[name] = value;
  }
  return out;
}

function applyAdds(flat: string[], rules: HeaderRules): void {
  for (const [name, value] of rules.add) {
    // "add" replaces: drop an earlier value of the same name first.
    for (let i = flat.length - 2; i >= 0; i -= 2) {
      if (flat[i] === name) flat.splice(i, 2);
    }
    flat.push(name, value);
  }
}

function joinValue(value: string | string[] | undefined): string {
  if (value === undefined) return '';
  return Array.isArray(value) ? value.join(', ') : value;
}

/** True when this sidecar's own Via token is already on the message (a loop). */
export function carriesOwnVia(headers: IncomingHttpHeaders): boolean {
  const via = headers.via;
  return typeof via === 'string' && via.split(',').some((hop) => hop.trim() === VIA_TOKEN);
}

/**
 * Header fields on their way out to an HTTP/2 client (RFC 9113 8.2): names
 * in lower case, and the connection-specific fields an HTTP/1.1 upstream may
 * send (Connection and what it names, Keep-Alive, Proxy-Connection,
 * Transfer-Encoding, Upgrade) left out, since HTTP/2 has no use for them and
 * nghttp2 refuses a head that carries them. Trailers lose pseudo-fields and
 * the fields that may not be trailers. The request direction (pseudo-headers
 * to Host, cookies) is in request.ts; the upstream request is rebuilt by
 * proxy/headers.ts for both protocols.
 */
import type { OutgoingHttpHeaders } from 'node:http';

/** Fields that describe one HTTP/1.1 connection (RFC 9113 8.2.2). */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings', 'te']);

/** Fields a trailer section may not carry (framing, routing; RFC 9110 6.5.1), besides the connection-specific ones. */
const NOT_TRAILERS = new Set(['content-length', 'content-type', 'content-encoding', 'content-range', 'host', 'trailer', 'set-cookie']);

/** The fields named by a Connection value: they describe the connection too. */
function namedByConnection(value: unknown): Set<string> | undefined {
  if (value === undefined) return undefined;
  const names = new Set<string>();
  for (const part of Array.isArray(value) ? value : [String(value)]) {
    for (const token of String(part).split(',')) {
      const name = token.trim().toLowerCase();
      if (name) names.add(name);
    }
  }
  return names;
}

/** The head an HTTP/2 client gets: `preset` (setHeader) under `headers`, as ServerResponse merges them. */
export function responseFields(preset: OutgoingHttpHeaders | undefined, headers: OutgoingHttpHeaders | undefined): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  let named: Set<string> | undefined;
  for (const source of [preset, headers]) {
    if (!source) continue;
    for (const key in source) {
      const name = key.toLowerCase();
      if (name === 'connection') named = namedByConnection(source[key]);
      out[name] = source[key];
    }
  }
  for (const name of CONNECTION_SPECIFIC) delete out[name];
  if (named) for (const name of named) delete out[name];
  return out;
}

/** Trailer fields for an HTTP/2 client, from addTrailers() input. */
export function trailerFields(headers: OutgoingHttpHeaders | ReadonlyArray<[string, string]>): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  const entries = Array.isArray(headers) ? (headers as ReadonlyArray<[string, string]>) : Object.entries(headers as OutgoingHttpHeaders);
  for (const [key, value] of entries) {
    const name = key.toLowerCase();
    if (value === undefined || name.startsWith(':') || CONNECTION_SPECIFIC.has(name) || NOT_TRAILERS.has(name)) continue;
    out[name] = value;
  }
  return out;
}

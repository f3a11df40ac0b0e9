/**
 * `compress:` on a proxied route: the answer is compressed on the fly when
 * the client accepts a coding we offer, the media type is worth it, the body
 * is at least `minLength` (judged by Content-Length when there is one), and
 * nothing makes it unsafe: a body already encoded, `Cache-Control:
 * no-transform`, a status without a body (1xx, 204, 304), HEAD, a Range
 * request or a 206, gRPC (it frames and compresses its own messages).
 * Upgrades and tunnels never reach a response filter.
 *
 * Compressing drops Content-Length (the length changes) and Accept-Ranges
 * (ranges of the encoded bytes are not offered), and adds `Vary:
 * Accept-Encoding`, also to identity answers that could have been compressed
 * and to 304s, so a shared cache keeps the variants apart. A strong ETag
 * gets the coding as a suffix (`"x"` -> `"x-gzip"`): the encoded bytes are a
 * different representation and must not share a strong validator with the
 * identity ones. A client's If-None-Match is mapped back (`"x-gzip"` ->
 * `"x"`) before it goes upstream, so its conditional GET still gets a 304,
 * whose ETag is then given the suffix again (Caddy's encode handler does the
 * same). A weak ETag is left alone: weak comparison already allows
 * different encodings of one resource. The ETag is never dropped.
 */
import type { ClientRequest, ClientResponse } from '../net/client.ts';
import { compressionBytesTotal, compressionTotal, type HotSeries } from '../observe/metrics.ts';
import { isGrpc } from '../core/errors.ts';
import { CODINGS, type Coding } from './accept-encoding.ts';
import type { Compression } from './compression.ts';
import { EncodedBody, type CodingBytes } from './encoded-body.ts';
import type { BodyFilter, Policy, PolicyDecision, PolicyRequest, ResponseFilter, ResponseHeaders, SentBytes } from './policy.ts';

/** Why an answer of a compress route went out as it came (the `result` label besides the coding). */
export type SkipReason = 'not_accepted' | 'too_small' | 'type' | 'encoded' | 'no_transform' | 'status' | 'head' | 'range' | 'grpc';

/** `"tag-gzip"` -> tag and coding, for the tags this policy made. */
const OUR_SUFFIX = new RegExp(`^"(.*)-(${CODINGS.join('|')})"$`);
/** Entity tags in a list (RFC 9110 8.8.3): a tag may hold a comma, so the list is not split on commas. */
const ENTITY_TAG = /(W\/)?"[^"]*"/g;

export class CompressPolicy implements Policy {
  readonly compression: Compression;
  readonly #route: string;
  readonly #results = new Map<string, HotSeries>();
  readonly #bytes = new Map<Coding, CodingBytes>();

  constructor(compression: Compression, route: string) {
    this.compression = compression;
    this.#route = route;
  }

  decide({ req }: PolicyRequest): PolicyDecision | undefined {
    const method = req.method;
    if (method === 'CONNECT') return undefined; // a tunnel: its bytes are not ours to touch
    const restored = req.headers['if-none-match'] === undefined ? undefined : mapIfNoneMatch(req);
    let skip: SkipReason | undefined;
    if (method === 'HEAD') skip = 'head';
    else if (req.headers.range !== undefined) skip = 'range';
    else if (isGrpc(req.headers)) skip = 'grpc';
    const coding = skip ? undefined : this.compression.choose(req.headers['accept-encoding']);
    return { response: new CompressFilter(this, coding, skip ?? (coding ? undefined : 'not_accepted'), restored) };
  }

  /** Counts one answer's result. */
  count(result: Coding | SkipReason): void {
    let series = this.#results.get(result);
    if (!series) {
      series = compressionTotal.series({ route: this.#route, result });
      this.#results.set(result, series);
    }
    series.inc();
  }

  bytesOf(coding: Coding): CodingBytes {
    let bytes = this.#bytes.get(coding);
    if (!bytes) {
      bytes = {
        in: compressionBytesTotal.series({ route: this.#route, algorithm: coding, direction: 'in' }),
        out: compressionBytesTotal.series({ route: this.#route, algorithm: coding, direction: 'out' }),
      };
      this.#bytes.set(coding, bytes);
    }
    return bytes;
  }
}

/** One request's view of its answer: the coding chosen for it, or why there is none. */
class CompressFilter implements ResponseFilter {
  readonly #policy: CompressPolicy;
  readonly #coding: Coding | undefined;
  readonly #skip: SkipReason | undefined;
  /** The coding of the tags taken off If-None-Match: a 304 answers for that variant. */
  readonly #restored: Coding | undefined;

  constructor(policy: CompressPolicy, coding: Coding | undefined, skip: SkipReason | undefined, restored: Coding | undefined) {
    this.#policy = policy;
    this.#coding = coding;
    this.#skip = skip;
    this.#restored = restored;
  }

  head(status: number, headers: ResponseHeaders, res: ClientResponse, sent: SentBytes): BodyFilter | undefined {
    const compression = this.#policy.compression;
    if (status === 304) {
      addVary(headers);
      if (this.#restored) suffixEtag(headers, this.#restored);
      return this.#pass('status');
    }
    if (status < 200 || status === 204) return this.#pass('status');
    if (this.#skip === 'grpc') return this.#pass('grpc'); // whatever its type: gRPC is never ours to encode
    const encoded = headers['content-encoding'];
    if (encoded !== undefined && encoded !== 'identity') return this.#pass('encoded');
    if (/\bno-transform\b/i.test(String(headers['cache-control'] ?? ''))) return this.#pass('no_transform');
    if (!compression.compressible(headers['content-type'])) return this.#pass('type');
    // From here on the answer depends on Accept-Encoding, whatever is decided.
    addVary(headers);
    if (status === 206) return this.#pass('range');
    const coding = this.#coding;
    if (coding === undefined) return this.#pass(this.#skip ?? 'not_accepted');
    const length = headers['content-length'];
    if (length !== undefined && (length === '0' || Number(length) < compression.minLength)) return this.#pass('too_small');

    delete headers['content-length'];
    delete headers['accept-ranges'];
    headers['content-encoding'] = coding;
    suffixEtag(headers, coding);
    this.#policy.count(coding);
    return new EncodedBody(res, compression, coding, sent, this.#policy.bytesOf(coding));
  }

  /** The answer goes out as it came; counted with the reason. */
  #pass(reason: SkipReason): undefined {
    this.#policy.count(reason);
    return undefined;
  }
}

/** Adds Accept-Encoding to Vary, once (`*` already covers it). */
export function addVary(headers: ResponseHeaders): void {
  const vary = headers.vary;
  if (vary === undefined) {
    headers.vary = 'Accept-Encoding';
    return;
  }
  const text = Array.isArray(vary) ? vary.join(', ') : vary;
  if (/(?:^|,)\s*(?:\*|accept-encoding)\s*(?:,|$)/i.test(text)) return;
  headers.vary = text.trim() === '' ? 'Accept-Encoding' : `${text}, Accept-Encoding`;
}

/** A strong ETag made the encoded variant's own: `"x"` -> `"x-br"`. */
function suffixEtag(headers: ResponseHeaders, coding: Coding): void {
  const etag = headers.etag;
  if (typeof etag !== 'string' || !etag.startsWith('"') || !etag.endsWith('"') || etag.length < 2) return;
  headers.etag = `${etag.slice(0, -1)}-${coding}"`;
}

/**
 * Takes our suffixes off the strong tags of If-None-Match, in the parsed and
 * the raw headers (the upstream request is built from the raw ones), and
 * returns the coding they named (the first, when several did).
 */
function mapIfNoneMatch(req: ClientRequest): Coding | undefined {
  let restored: Coding | undefined;
  const unsuffix = (value: string): string =>
    value.replace(ENTITY_TAG, (tag, weak: string | undefined) => {
      const ours = weak ? null : OUR_SUFFIX.exec(tag);
      if (!ours) return tag;
      restored ??= ours[2] as Coding;
      return `"${ours[1]}"`;
    });
  const value = req.headers['if-none-match']!;
  const mapped = unsuffix(value);
  if (mapped === value) return undefined;
  req.headers['if-none-match'] = mapped;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === 13 && raw[i].toLowerCase() === 'if-none-match') raw[i + 1] = unsuffix(raw[i + 1]);
  }
  return restored;
}

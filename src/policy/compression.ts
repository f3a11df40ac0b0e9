/**
 * A route's `compress` settings, compiled once per snapshot: which coding a
 * request gets (accept-encoding.ts), which media types are worth it, and the
 * node:zlib encoders at the configured levels. Used by the compress policy
 * for proxied answers (compress.ts) and by static routes for files
 * (ingress/static-encode.ts).
 *
 * Levels are for compressing on the fly: gzip 5, br 4, zstd 3 by default
 * (NGINX's gzip_comp_level is 1, Caddy's gzip 5 and zstd its default 3).
 * Brotli's own default quality, 11, costs about 100 times the CPU of 4 for
 * a few percent of size: fine for files compressed once at build time
 * (`precompressed`), never per request.
 */
import zlib from 'node:zlib';
import type { Transform } from 'node:stream';
import { promisify } from 'node:util';
import { CodingChooser, type Coding } from './accept-encoding.ts';

/** Node 24 has zstd in node:zlib, marked experimental; an older runtime may not. */
export const ZSTD_SUPPORTED = typeof zlib.createZstdCompress === 'function';

/**
 * What is compressed unless `types` says otherwise: text, and the structured
 * or script formats that are text in all but name (Caddy's and Cloudflare's
 * lists, roughly). Images, audio, video, archives and fonts in woff/woff2 are
 * compressed already.
 */
export const DEFAULT_TYPES: readonly string[] = [
  'text/*',
  'application/json',
  'application/*+json',
  'application/x-ndjson',
  'application/javascript',
  'application/x-javascript',
  'application/ecmascript',
  'application/xml',
  'application/*+xml',
  'application/wasm',
  'application/graphql',
  'application/x-www-form-urlencoded',
  'image/svg+xml',
  'image/x-icon',
  'image/vnd.microsoft.icon',
  'image/bmp',
  'font/ttf',
  'font/otf',
  'application/vnd.ms-fontobject',
];

/** A node:zlib compressor (gzip, brotli, zstd): a Transform that can also flush. */
export type Encoder = Transform & { flush(kind?: number, callback?: () => void): void };

export interface CompressSettings {
  readonly algorithms: readonly Coding[];
  readonly levels: Readonly<Record<Coding, number>>;
  readonly minLength: number;
  readonly types: readonly string[];
}

/**
 * Window of the on-the-fly encoders: 512 KiB (ngx_brotli's default) rather
 * than brotli's 4 MiB and zstd's 2 MiB, so each response being compressed
 * holds about a megabyte, not several. Web answers are seldom larger, and a
 * larger one loses little.
 */
const BROTLI_WINDOW_BITS = 19;
const ZSTD_WINDOW_LOG = 19;

const brotliCompress = promisify(zlib.brotliCompress);
const zstdCompressSync = ZSTD_SUPPORTED ? zlib.zstdCompressSync : undefined;
const gzip = promisify(zlib.gzip);
const zstdCompress = ZSTD_SUPPORTED ? promisify(zlib.zstdCompress) : undefined;

/** Media type patterns: `text/*`, `application/*+json`, an exact `type/subtype`, or `*` for any. */
function typeMatcher(patterns: readonly string[]): (mediaType: string) => boolean {
  const exact = new Set<string>();
  const families: Array<{ prefix: string; suffix: string }> = [];
  let any = false;
  for (const pattern of patterns) {
    const lower = pattern.toLowerCase();
    const star = lower.indexOf('*');
    if (lower === '*' || lower === '*/*') any = true;
    else if (star === -1) exact.add(lower);
    else families.push({ prefix: lower.slice(0, star), suffix: lower.slice(star + 1) });
  }
  return (mediaType) =>
    any || exact.has(mediaType) || families.some(({ prefix, suffix }) => mediaType.length > prefix.length + suffix.length && mediaType.startsWith(prefix) && mediaType.endsWith(suffix));
}

/** Bound on remembered Content-Type values (an upstream that varies its parameters must not grow memory). */
const MAX_REMEMBERED_TYPES = 256;

export class Compression {
  readonly algorithms: readonly Coding[];
  readonly minLength: number;
  /** The settings as text: equal settings, equal text (a static route keeps its caches across reloads while it is unchanged). */
  readonly settingsKey: string;
  readonly #levels: Readonly<Record<Coding, number>>;
  readonly #chooser: CodingChooser;
  readonly #matches: (mediaType: string) => boolean;
  /** Content-Type header value -> compressible. */
  readonly #known = new Map<string, boolean>();

  constructor(settings: CompressSettings) {
    this.algorithms = Object.freeze([...settings.algorithms]);
    this.minLength = settings.minLength;
    this.settingsKey = JSON.stringify(settings);
    this.#levels = Object.freeze({ ...settings.levels });
    this.#chooser = new CodingChooser(this.algorithms);
    this.#matches = typeMatcher(settings.types);
  }

  /** The coding for a request with this Accept-Encoding, or undefined (identity). */
  choose(acceptEncoding: string | string[] | undefined): Coding | undefined {
    return this.#chooser.choose(acceptEncoding);
  }

  /** Whether a body of this Content-Type is worth compressing (no Content-Type: no). */
  compressible(contentType: string | string[] | undefined): boolean {
    if (typeof contentType !== 'string') return false;
    let known = this.#known.get(contentType);
    if (known === undefined) {
      const semicolon = contentType.indexOf(';');
      known = this.#matches((semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase());
      if (this.#known.size >= MAX_REMEMBERED_TYPES) this.#known.clear();
      this.#known.set(contentType, known);
    }
    return known;
  }

  /** A streaming encoder at the configured level. */
  encoder(coding: Coding): Encoder {
    switch (coding) {
      case 'gzip':
        return zlib.createGzip({ level: this.#levels.gzip });
      case 'br':
        return zlib.createBrotliCompress({ params: this.#brotliParams() });
      case 'zstd':
        return zlib.createZstdCompress({ params: this.#zstdParams() });
    }
  }

  /** A whole body encoded at once (off the event loop, in libuv's thread pool). */
  encodeWhole(coding: Coding, body: Buffer): Promise<Buffer> {
    switch (coding) {
      case 'gzip':
        return gzip(body, { level: this.#levels.gzip });
      case 'br':
        return brotliCompress(body, { params: { ...this.#brotliParams(), [zlib.constants.BROTLI_PARAM_SIZE_HINT]: body.length } });
      case 'zstd':
        return zstdCompress!(body, { params: this.#zstdParams() });
    }
  }

  /** A whole body encoded at once, on the event loop: for small bodies only (encoded-body.ts ONE_SHOT_LIMIT). */
  encodeSync(coding: Coding, body: Buffer): Buffer {
    switch (coding) {
      case 'gzip':
        return zlib.gzipSync(body, { level: this.#levels.gzip });
      case 'br':
        return zlib.brotliCompressSync(body, { params: { ...this.#brotliParams(), [zlib.constants.BROTLI_PARAM_SIZE_HINT]: body.length } });
      case 'zstd':
        return zstdCompressSync!(body, { params: this.#zstdParams() });
    }
  }

  #brotliParams(): Record<number, number> {
    return { [zlib.constants.BROTLI_PARAM_QUALITY]: this.#levels.br, [zlib.constants.BROTLI_PARAM_LGWIN]: BROTLI_WINDOW_BITS };
  }

  #zstdParams(): Record<number, number> {
    return { [zlib.constants.ZSTD_c_compressionLevel]: this.#levels.zstd, [zlib.constants.ZSTD_c_windowLog]: ZSTD_WINDOW_LOG };
  }
}

/**
 * The flush that makes an encoder emit everything written so far without
 * ending the stream or, for gzip, resetting its dictionary (Node's default
 * for zlib streams, Z_FULL_FLUSH, would).
 */
export function flushKind(coding: Coding): number {
  switch (coding) {
    case 'gzip':
      return zlib.constants.Z_SYNC_FLUSH;
    case 'br':
      return zlib.constants.BROTLI_OPERATION_FLUSH;
    case 'zstd':
      return zlib.constants.ZSTD_e_flush;
  }
}

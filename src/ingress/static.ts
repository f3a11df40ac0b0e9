/**
 * Static offload: a `static:` route serves files from `root` at the route's
 * path prefix, so the app behind the sidecar never spends its event loop on
 * them. Safe path resolution lives in static-path.ts, the HTTP validators in
 * static-negotiate.ts (jshttp `fresh` + `range-parser`, send's rules), the hot
 * file cache in static-cache.ts, the finished answers of hot files in
 * static-hot.ts; this file strings them together.
 *
 * Answers: 200/206/304 for files; 301 to the slash form of a folder that has an
 * index; 404 `{"error":"not_found"}` (or a miss with `fallthrough`) for anything
 * that is not a servable file of this root, traversal attempts and hidden
 * dotfiles included (no hint that they exist); 412 / 416 per RFC 9110; 400
 * `bad_request` and 405 `method_not_allowed` through sendError, so they carry
 * `x-sidecar-error`. 404/412/416 are file-server answers, not sidecar faults:
 * they have a small JSON body but no `x-sidecar-error`.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import type { ClientRequest, ClientResponse } from '../net/client.ts';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { StaticConfig } from '../config/schema.ts';
import type { Compression } from '../policy/compression.ts';
import { ProxyError } from '../core/errors.ts';
import { sendError } from '../net/error-answer.ts';
import { staticBytesTotal, staticResponsesTotal } from '../observe/metrics.ts';
import { DEFAULT_SETTLE_MS, FileCache, bytesOf, readExactly, sameVersion, type CachedBody, type FileCacheStats } from './static-cache.ts';
import { joinUnder, parseStaticPath, slashLocation, type Resolved } from './static-path.ts';
import { HotAnswers, sharedHeaders } from './static-hot.ts';
import { ResolveCache, type LookupWindow } from './static-resolve.ts';
import { StaticEncoding } from './static-encode.ts';
import { streamFile } from './static-stream.ts';
import {
  acceptedEncodings,
  cacheControl,
  decideRange,
  ENCODING_SUFFIX,
  isConditional,
  isFresh,
  isPreconditionFailure,
  typeFor,
  validatorsOf,
  type Encoding,
} from './static-negotiate.ts';

export interface StaticRoute {
  /** Route name, the `route` label of the static metrics. */
  name: string;
  /** The route's `match.path`, e.g. "/static/" or "/": stripped from the request path. */
  prefix: string;
  /** `root` is absolute (the config loader resolves it). */
  config: StaticConfig;
  /** The route's `compress` (or its listener's): files are then compressed on the fly (static-encode.ts). */
  compression?: Compression;
}

/**
 * The request's record (its Exchange): body bytes are counted into `bytesOut`
 * (the access line's), and every answer carries `reqId` as x-request-id. The
 * id goes in the object handed to writeHead, not through an earlier
 * setHeader(), which would send Node down writeHead's slow path (3-4 us of
 * CPU per 1 KiB file under load).
 */
export interface BodyCounter {
  bytesOut: number;
  readonly reqId?: string;
}

export interface StaticHandler {
  /**
   * Serves the request, or returns 'miss' (only when fallthrough is true and
   * no file exists) without touching res. 'served' at once, without a
   * promise, when a hot answer (static-hot.ts) served it.
   */
  handle(req: ClientRequest, res: ClientResponse, sent?: BodyCounter): 'served' | Promise<'served' | 'miss'>;
  /** Drops the memory cache (there are no watchers to stop). */
  close(): void;
  /** Hot-file cache counters, for tests and the admin port. */
  cacheStats(): FileCacheStats;
}

export interface StaticHandlerOptions {
  /** How old a file's last change must be before it may be cached (see static-cache.ts). */
  cacheSettleMs?: number;
}

export function createStaticHandler(route: StaticRoute, options: StaticHandlerOptions = {}): StaticHandler {
  return new StaticFiles(route, options);
}

/** x-request-id for an answer, when the caller gave an id. */
function idHeader(sent: BodyCounter): Record<string, string> {
  return sent.reqId === undefined ? {} : { 'x-request-id': sent.reqId };
}

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW;
/** A file that keeps changing under us is given up after this many tries (each re-reads its stat). */
const MAX_TRIES = 3;

class StaticFiles implements StaticHandler {
  readonly #route: StaticRoute;
  readonly #config: StaticConfig;
  readonly #cache: FileCache;
  readonly #cacheControl: string;
  readonly #paths: ResolveCache;
  readonly #hot: HotAnswers;
  readonly #encoding: StaticEncoding | undefined;
  /** Labelled metric children, per status (prom-client would hash the labels on every inc). */
  readonly #responses = new Map<number, { inc(): void }>();
  readonly #bytes: { inc(value: number): void };

  constructor(route: StaticRoute, options: StaticHandlerOptions) {
    this.#bytes = staticBytesTotal.series({ route: route.name });
    this.#paths = new ResolveCache(route.config.root, route.config.dotfiles, route.config.cache.revalidate);
    this.#route = route;
    this.#config = route.config;
    this.#cache = new FileCache(route.config.cache.maxBytes, route.config.cache.maxFileSize, options.cacheSettleMs ?? DEFAULT_SETTLE_MS);
    this.#cacheControl = cacheControl(route.config.maxAge, route.config.immutable);
    this.#encoding = route.compression && new StaticEncoding(route.compression, route.name);
    this.#hot = new HotAnswers(route.config.precompressed || this.#encoding !== undefined);
  }

  handle(req: ClientRequest, res: ClientResponse, sent: BodyCounter = { bytesOut: 0 }): 'served' | Promise<'served' | 'miss'> {
    try {
      if (this.#serveHot(req, res, sent)) return 'served';
    } catch (err) {
      return this.#failed(req, res, sent, err);
    }
    return this.#handleFully(req, res, sent);
  }

  close(): void {
    this.#cache.clear();
    this.#paths.clear();
    this.#hot.clear();
  }

  cacheStats(): FileCacheStats {
    return this.#cache.stats();
  }

  /** A hot answer (static-hot.ts) with its body from the cache; false when the request needs the full path. */
  #serveHot(req: ClientRequest, res: ClientResponse, sent: BodyCounter): boolean {
    const answer = this.#hot.find(req);
    if (!answer) return false;
    const body = this.#cache.hit(answer.real, answer.stat);
    if (body === undefined) return false;
    res.writeHead(200, sent.reqId === undefined ? answer.headers : { ...answer.headers, 'x-request-id': sent.reqId });
    res.end(body, 'latin1');
    sent.bytesOut += body.length;
    this.#count(200, body.length);
    return true;
  }

  async #handleFully(req: ClientRequest, res: ClientResponse, sent: BodyCounter): Promise<'served' | 'miss'> {
    try {
      return await this.#handle(req, res, sent);
    } catch (err) {
      return this.#failed(req, res, sent, err);
    }
  }

  #failed(req: ClientRequest, res: ClientResponse, sent: BodyCounter, err: unknown): 'served' {
    if (res.headersSent) {
      res.destroy();
      return 'served';
    }
    const code = (err as { code?: string } | undefined)?.code;
    if (code === 'EACCES' || code === 'EPERM') this.#plain(req, res, sent, 403, 'forbidden', 'the file is not readable');
    else this.#plain(req, res, sent, 500, 'internal_error', 'the file could not be read');
    return 'served';
  }

  async #handle(req: ClientRequest, res: ClientResponse, sent: BodyCounter): Promise<'served' | 'miss'> {
    const config = this.#config;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      // With fallthrough the app behind may well accept a POST on this path.
      if (config.fallthrough) return 'miss';
      this.#count(405);
      sent.bytesOut += sendError(res, new ProxyError('method_not_allowed'), { allow: 'GET, HEAD', ...idHeader(sent) });
      return 'served';
    }
    const parsed = parseStaticPath(req.url ?? '/', this.#route.prefix, config.dotfiles);
    if (parsed.kind === 'bad_request') {
      this.#count(400);
      sent.bytesOut += sendError(res, new ProxyError('bad_request', `malformed request path: ${parsed.reason}`), idHeader(sent));
      return 'served';
    }
    if (parsed.kind === 'not_found') return this.#notFound(req, res, sent);

    const requested = joinUnder(config.root, parsed.segments);
    // Until when every lookup below is answered from memory: how long this answer may be reused.
    const lookups: LookupWindow = { until: Infinity };
    let found = await this.#paths.resolve(requested, lookups);
    if (!found) return this.#notFound(req, res, sent);
    let name = requested;
    if (found.stat.isDirectory()) {
      if (config.index === false) return this.#notFound(req, res, sent);
      name = join(requested, config.index);
      const index = await this.#paths.resolve(name, lookups);
      if (!index?.stat.isFile()) return this.#notFound(req, res, sent);
      // Redirect only when the slash form will be served: an app behind a
      // fallthrough route keeps its own /users even if public/users/ exists.
      if (!parsed.trailingSlash) return this.#redirect(res, sent, slashLocation(parsed.pathname, parsed.search));
      found = index;
    } else if (!found.stat.isFile() || parsed.trailingSlash) {
      // Not a FIFO, socket or device (a read could block forever), and "file.txt/" is no file.
      return this.#notFound(req, res, sent);
    }

    const variant = await this.#variant(req, name, found, lookups);
    await this.#send(req, res, sent, variant.file, variant.encoding, name, lookups);
    return 'served';
  }

  /** The precompressed sibling (`name.br`, `name.gz`) the client prefers, when it exists inside the root. */
  async #variant(req: ClientRequest, name: string, identity: Resolved, lookups: LookupWindow): Promise<{ file: Resolved; encoding?: Encoding }> {
    if (!this.#config.precompressed) return { file: identity };
    for (const encoding of acceptedEncodings(req.headers['accept-encoding'])) {
      const file = await this.#paths.resolve(name + ENCODING_SUFFIX[encoding], lookups);
      if (file?.stat.isFile()) return { file, encoding };
    }
    return { file: identity };
  }

  async #send(
    req: ClientRequest,
    res: ClientResponse,
    sent: BodyCounter,
    file: Resolved,
    encoding: Encoding | undefined,
    name: string,
    lookups: LookupWindow,
  ): Promise<void> {
    let stat = file.stat;
    let handle: FileHandle | undefined;
    let streaming = false;
    const conditional = isConditional(req.headers);
    try {
      for (let attempt = 1; ; attempt++) {
        const size = Number(stat.size);
        const type = typeFor(name);
        // Compressed on the fly (static-encode.ts) when no precompressed sibling serves it.
        const coding = encoding === undefined ? this.#encoding?.choose(req, type, size) : undefined;
        const { etag, lastModified } = validatorsOf(stat, encoding ?? coding);
        const headers: OutgoingHttpHeaders = {
          'accept-ranges': 'bytes',
          'cache-control': this.#cacheControl,
          etag,
          'last-modified': lastModified,
        };
        if (coding) delete headers['accept-ranges']; // ranges of the encoded bytes are not offered
        // The answer depends on Accept-Encoding whenever variants may exist, identity answers included.
        if (this.#config.precompressed || this.#encoding?.varies(type)) headers.vary = 'Accept-Encoding';
        if (sent.reqId !== undefined) headers['x-request-id'] = sent.reqId;

        if (conditional) {
          if (isPreconditionFailure(req.headers, etag, lastModified)) {
            return this.#plain(req, res, sent, 412, 'precondition_failed', 'a precondition of the request does not hold');
          }
          if (isFresh(req.headers, etag, lastModified)) {
            this.#count(304);
            res.writeHead(304, headers);
            res.end();
            return;
          }
        }
        const range = decideRange(req.headers, size, etag, lastModified);
        if (range.kind === 'unsatisfiable') {
          return this.#plain(req, res, sent, 416, 'range_not_satisfiable', 'no byte of the requested range exists', {
            'content-range': `bytes */${size}`,
          });
        }
        headers['content-type'] = type;
        if (encoding ?? coding) headers['content-encoding'] = encoding ?? coding;
        let status = 200;
        let start = 0;
        let end = size - 1;
        if (range.kind === 'partial') {
          status = 206;
          ({ start, end } = range);
          headers['content-range'] = `bytes ${start}-${end}/${size}`;
        }
        const length = Math.max(0, end - start + 1);
        headers['content-length'] = length;

        if (req.method === 'HEAD' || length === 0) {
          this.#count(status);
          res.writeHead(status, headers);
          res.end();
          return;
        }
        const cacheable = this.#cache.fits(size);
        let body: CachedBody | undefined = cacheable && !handle ? this.#cache.get(file.real, stat) : undefined;
        let cached = body !== undefined;
        if (body === undefined) {
          if (!handle) {
            handle = await open(file.real, OPEN_FLAGS);
            const opened = await handle.stat({ bigint: true });
            // Headers must describe the bytes this handle will read: re-decide from its stat.
            if (!sameVersion(stat, opened)) {
              if (!opened.isFile() || attempt >= MAX_TRIES) throw new Error('file changed while being served');
              stat = opened;
              continue;
            }
          }
          if (cacheable) {
            const read = await readExactly(handle, size);
            const after = await handle.stat({ bigint: true });
            if (!read || !sameVersion(stat, after)) {
              if (attempt >= MAX_TRIES) throw new Error('file changed while being read');
              stat = after;
              continue;
            }
            ({ kept: cached, body } = this.#cache.set(file.real, stat, after, read));
          }
        }
        let real = file.real;
        if (coding && body !== undefined) {
          // The encoded copy is the answer: its own length, kept (when it is) beside the file.
          const copy = await this.#encoding!.copy(this.#cache, file.real, stat, coding, body);
          ({ key: real, body, kept: cached } = copy);
          headers['content-length'] = body.length;
          start = 0;
          end = body.length - 1;
        } else if (coding) {
          delete headers['content-length']; // known at the end of the stream only: chunked
        }
        res.writeHead(status, headers);
        if (cached && status === 200 && stat === file.stat && !conditional) {
          // The whole file from memory, for the stat the lookups gave: the same request gets this answer again.
          this.#hot.remember(req.url ?? '/', {
            until: lookups.until,
            acceptEncoding: req.headers['accept-encoding'],
            real,
            stat,
            headers: sharedHeaders(headers),
          });
        }
        if (body !== undefined) {
          const bytes = bytesOf(body, start, end);
          res.end(bytes, 'latin1');
          sent.bytesOut += bytes.length;
          this.#count(status, bytes.length);
          return;
        }
        streaming = true;
        this.#count(status);
        const streamed = await streamFile(res, handle!, start, end, length, coding && this.#encoding!.encoder(coding));
        sent.bytesOut += streamed.sent;
        if (streamed.sent > 0) this.#bytes.inc(streamed.sent);
        if (coding) this.#encoding!.counted(coding, streamed.read, streamed.sent);
        return;
      }
    } finally {
      if (handle && !streaming) await handle.close();
    }
  }

  #notFound(req: ClientRequest, res: ClientResponse, sent: BodyCounter): 'served' | 'miss' {
    if (this.#config.fallthrough) return 'miss';
    this.#plain(req, res, sent, 404, 'not_found', 'no such file');
    return 'served';
  }

  #redirect(res: ClientResponse, sent: BodyCounter, location: string): 'served' {
    this.#count(301);
    res.writeHead(301, { location, 'content-length': 0, 'cache-control': this.#cacheControl, ...idHeader(sent) });
    res.end();
    return 'served';
  }

  /** A file-server answer with a small JSON body (not a sidecar fault: no x-sidecar-error). */
  #plain(req: ClientRequest, res: ClientResponse, sent: BodyCounter, status: number, error: string, message: string, extra?: OutgoingHttpHeaders): void {
    this.#count(status);
    const body = JSON.stringify({ error, message });
    const length = Buffer.byteLength(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': length,
      'cache-control': 'no-store',
      ...idHeader(sent),
      ...extra,
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    res.end(body);
    sent.bytesOut += length;
  }

  #count(status: number, bytes = 0): void {
    let counter = this.#responses.get(status);
    if (!counter) {
      counter = staticResponsesTotal.series({ route: this.#route.name, code: String(status) });
      this.#responses.set(status, counter);
    }
    counter.inc();
    if (bytes > 0) this.#bytes.inc(bytes);
  }
}

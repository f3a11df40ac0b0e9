/**
 * The finished answer to a plain GET of a hot file, kept per request target
 * and given again while nothing it was decided from can have changed, so a
 * hot file costs one Map lookup instead of parsing the path, three awaited
 * lookups and building the headers again (1 KiB file, wrk -c50: 27 -> 20.5
 * us of CPU per request, kernel time included, since wrk waited less).
 *
 * Nothing is served here that the full path would not serve:
 * - only a GET without validators, Range or (when variants exist) another
 *   Accept-Encoding than the one the answer was negotiated for is answered;
 * - the answer lasts until the earliest expiry of the path lookups it rests
 *   on (static-resolve.ts), the window in which the full path would also
 *   answer from memory;
 * - the body comes from the file cache on every use, checked against the
 *   stat the answer was made from, so an evicted or replaced file goes back
 *   to the full path (and memory stays bounded by the cache).
 */
import type { BigIntStats } from 'node:fs';
import type { OutgoingHttpHeaders } from 'node:http';
import type { ClientRequest } from '../net/client.ts';
import { isConditional } from './static-negotiate.ts';

/** Bound on remembered request targets; past it the memo starts over (query-string cache busters must not grow memory). */
const MAX_ANSWERS = 1_000;

export interface HotAnswer {
  /** performance.now() time until which every lookup the answer rests on is still answered from memory. */
  readonly until: number;
  /** The Accept-Encoding the variant was chosen for (compared only when the route serves variants). */
  readonly acceptEncoding: string | undefined;
  /** The file and the stat its cached body must still match. */
  readonly real: string;
  readonly stat: BigIntStats;
  /** Every header of the 200 answer but x-request-id. */
  readonly headers: OutgoingHttpHeaders;
}

export class HotAnswers {
  readonly #negotiatesEncoding: boolean;
  readonly #answers = new Map<string, HotAnswer>();

  /** `negotiatesEncoding`: the route serves precompressed variants, so the answer depends on Accept-Encoding. */
  constructor(negotiatesEncoding: boolean) {
    this.#negotiatesEncoding = negotiatesEncoding;
  }

  /** The answer to give this request, when it is a plain GET of a target answered lately. */
  find(req: ClientRequest): HotAnswer | undefined {
    if (req.method !== 'GET' || req.url === undefined) return undefined;
    const answer = this.#answers.get(req.url);
    if (answer === undefined) return undefined;
    const headers = req.headers;
    if (headers.range !== undefined || isConditional(headers)) return undefined;
    if (this.#negotiatesEncoding && headers['accept-encoding'] !== answer.acceptEncoding) return undefined;
    if (answer.until <= performance.now()) {
      this.#answers.delete(req.url);
      return undefined;
    }
    return answer;
  }

  remember(url: string, answer: HotAnswer): void {
    if (answer.until <= performance.now()) return;
    if (this.#answers.size >= MAX_ANSWERS) this.#answers.clear();
    this.#answers.set(url, answer);
  }

  clear(): void {
    this.#answers.clear();
  }
}

/** The headers of an answer without its request's own x-request-id. */
export function sharedHeaders(headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
  const shared: OutgoingHttpHeaders = {};
  for (const name of Object.keys(headers)) if (name !== 'x-request-id') shared[name] = headers[name];
  return shared;
}

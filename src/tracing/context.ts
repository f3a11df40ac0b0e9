/**
 * One request's place in a distributed trace (W3C trace-context), decided at
 * its entry: parent-based sampling (a valid incoming `traceparent` decides by
 * its sampled flag; a new trace is sampled with `sampleRatio`), the ids of
 * the sidecar's SERVER span, and the `traceparent` each upstream try
 * carries. A sampled request sends its own span id (or its try's CLIENT span
 * id) upstream; an unsampled one passes the incoming header on untouched.
 * `tracestate` is not rebuilt (headers.ts copies it). Plain fields: this is
 * made for every request while tracing is on.
 */
import { randomHex } from '../proxy/headers.ts';
import type { TracingSettings } from './settings.ts';

/** version 00 (or a later one, read as 00), 32 hex trace id, 16 hex parent id, 2 hex flags. */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** One upstream try of a sampled request, as a CLIENT span (`tracing.upstreamSpans`). */
export interface TrySpan {
  readonly spanId: string;
  /** performance.now() at the start and end of the try. */
  readonly start: number;
  end: number;
  readonly endpoint: string;
  /** The endpoint's origin and the path sent (without the query). */
  readonly url: string;
  status: number;
  error: string | undefined;
}

export class TraceContext {
  readonly traceId: string;
  /** The SERVER span's id (also in the traceparent of an unsampled new trace). */
  readonly spanId: string;
  /** The incoming traceparent's parent id; undefined for a new trace. */
  readonly parentSpanId: string | undefined;
  readonly sampled: boolean;
  /** The client's traceparent, passed on as it is when the request is not sampled. */
  readonly incoming: string | undefined;
  /** CLIENT spans, one per try, when `upstreamSpans` is on and the request is sampled. */
  readonly tries: TrySpan[] | undefined;

  constructor(traceId: string, spanId: string, parentSpanId: string | undefined, sampled: boolean, incoming: string | undefined, upstreamSpans: boolean) {
    this.traceId = traceId;
    this.spanId = spanId;
    this.parentSpanId = parentSpanId;
    this.sampled = sampled;
    this.incoming = incoming;
    this.tries = sampled && upstreamSpans ? [] : undefined;
  }

  /**
   * The traceparent of the next upstream try; with upstream spans, also
   * starts that try's CLIENT span (ended by endTry).
   */
  upstreamTraceparent(endpoint: { readonly shown: string; readonly shownAuthority: string }, path: string): string {
    if (!this.sampled) return this.incoming ?? `00-${this.traceId}-${this.spanId}-00`;
    if (!this.tries) return `00-${this.traceId}-${this.spanId}-01`;
    const query = path.indexOf('?');
    const url = endpoint.shown.replace(/\/+$/, '') + (query === -1 ? path : path.slice(0, query));
    const span: TrySpan = { spanId: randomHex(8), start: performance.now(), end: 0, endpoint: endpoint.shownAuthority, url, status: 0, error: undefined };
    this.tries.push(span);
    return `00-${this.traceId}-${span.spanId}-01`;
  }

  /** Ends the CLIENT span of the last try with its response status (0: none) or error code. */
  endTry(status: number, error: string | undefined): void {
    const span = this.tries?.at(-1);
    if (!span || span.end !== 0) return;
    span.end = performance.now();
    span.status = status;
    span.error = error;
  }
}

/**
 * The trace context of a request that came with `traceparent` (a header
 * value, possibly absent or invalid). An invalid header counts as none, as
 * W3C trace-context says: the request starts a new trace.
 */
export function traceContextOf(traceparent: string | string[] | undefined, settings: TracingSettings): TraceContext {
  const parent = typeof traceparent === 'string' ? parseTraceparent(traceparent) : undefined;
  const spanId = randomHex(8);
  if (parent) {
    const sampled = (parseInt(parent.flags, 16) & 1) === 1;
    return new TraceContext(parent.traceId, spanId, parent.parentId, sampled, sampled ? undefined : (traceparent as string), settings.upstreamSpans);
  }
  const ratio = settings.sampleRatio;
  const sampled = ratio >= 1 || (ratio > 0 && Math.random() < ratio);
  return new TraceContext(randomHex(16), spanId, undefined, sampled, undefined, settings.upstreamSpans);
}

export function parseTraceparent(value: string): { traceId: string; parentId: string; flags: string } | undefined {
  const match = TRACEPARENT.exec(value.trim());
  if (!match) return undefined;
  const [, version, traceId, parentId, flags, rest] = match;
  // Version ff is invalid; version 00 has nothing after the flags.
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (traceId === ZERO_TRACE || parentId === ZERO_SPAN) return undefined;
  return { traceId, parentId, flags };
}

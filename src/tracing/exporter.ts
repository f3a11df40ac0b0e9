/**
 * Spans leave the process here: finished sampled requests wait in a bounded
 * queue and go to the collector in batches over OTLP/HTTP (JSON), one export
 * request at a time, from a timer, never from a request's path. A full queue
 * drops the new spans; an export that fails or times out drops its batch;
 * both count in `sidecar_tracing_spans_dropped_total{reason}`. A collector
 * that is down or slow therefore costs requests nothing but the spans
 * (the OpenTelemetry SDK's BatchSpanProcessor behaves the same way).
 *
 * One exporter per process (like the metrics registry), configured from each
 * new config snapshot; with workers, each worker exports its own spans.
 */
import { VERSION } from '../version.ts';
import type { Agent } from 'undici';
import { undici } from '../upstream/undici.ts';
import { log } from '../observe/log.ts';
import { tracingDropped, tracingExported } from '../observe/metrics.ts';
import { exportRequest, spanCount, type Resource, type TracedRequest } from './otlp.ts';
import type { TracingSettings } from './settings.ts';


export class SpanExporter {
  /**
   * Where and how spans go: the last settings tracing was on with. A reload
   * that turns tracing off stops new traces (the snapshot has none) but still
   * sends what is queued, and what requests begun before it still finish.
   */
  #settings: TracingSettings | undefined;
  #resource: Resource = { serviceName: 'sidecar', serviceVersion: VERSION };
  #queue: TracedRequest[] = [];
  /** Spans in the queue (a request with CLIENT spans holds several). */
  #queuedSpans = 0;
  #timer: NodeJS.Timeout | undefined;
  #exporting: Promise<void> | undefined;
  #agent: Agent | undefined;
  /** Whether the last export failed: a change is logged once, not every batch. */
  #failing = false;

  /** Applies the settings of a new snapshot (undefined: tracing off; spans still queued are sent where they were going). */
  configure(settings: TracingSettings | undefined): void {
    if (settings && settings.exportTimeout !== this.#settings?.exportTimeout) {
      void this.#agent?.close();
      this.#agent = new undici.Agent({ connections: 2, connect: { timeout: settings.exportTimeout }, headersTimeout: settings.exportTimeout, bodyTimeout: settings.exportTimeout });
    }
    if (!settings) return;
    this.#settings = settings;
    this.#resource = { serviceName: settings.serviceName, serviceVersion: VERSION };
  }

  /** Queues a finished sampled request; drops (and counts) its spans when the queue is full. */
  add(traced: TracedRequest): void {
    const settings = this.#settings;
    if (!settings) return; // never configured: no request can have been sampled
    const spans = spanCount(traced);
    if (this.#queuedSpans + spans > settings.maxQueue) {
      tracingDropped.queueFull.inc(spans);
      return;
    }
    this.#queue.push(traced);
    this.#queuedSpans += spans;
    if (this.#exporting) return; // the running export looks at the queue again when it ends
    if (this.#queuedSpans >= settings.maxBatch) this.#schedule(0);
    else if (!this.#timer) this.#schedule(settings.flushInterval);
  }

  #schedule(delayMs: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#exporting ??= this.#exportAll().finally(() => {
        this.#exporting = undefined;
        const settings = this.#settings;
        if (this.#queue.length > 0 && settings) this.#schedule(this.#queuedSpans >= settings.maxBatch ? 0 : settings.flushInterval);
      });
    }, delayMs).unref();
  }

  /** Sends full batches while there are, then the partial one that made the timer fire. */
  async #exportAll(): Promise<void> {
    do {
      await this.#exportBatch();
    } while (this.#settings && this.#queuedSpans >= this.#settings.maxBatch);
  }

  async #exportBatch(): Promise<void> {
    const settings = this.#settings;
    const agent = this.#agent;
    if (this.#queue.length === 0) return;
    const batch: TracedRequest[] = [];
    let spans = 0;
    const limit = settings?.maxBatch ?? Infinity;
    while (this.#queue.length > 0 && (batch.length === 0 || spans + spanCount(this.#queue[0]) <= limit)) {
      const next = this.#queue.shift()!;
      batch.push(next);
      spans += spanCount(next);
    }
    this.#queuedSpans -= spans;
    if (!settings || !agent) {
      tracingDropped.exportFailed.inc(spans);
      return;
    }
    try {
      const url = new URL(settings.endpoint);
      const response = await agent.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: 'POST',
        headers: { ...settings.headers, 'content-type': 'application/json' },
        body: exportRequest(batch, this.#resource),
        signal: AbortSignal.timeout(settings.exportTimeout),
      });
      await response.body.dump();
      if (response.statusCode < 200 || response.statusCode >= 300) throw new Error(`the collector answered ${response.statusCode}`);
      tracingExported.inc(spans);
      if (this.#failing) log.info('tracing: spans reach the collector again');
      this.#failing = false;
    } catch (err) {
      tracingDropped.exportFailed.inc(spans);
      if (!this.#failing) log.warn({ err: (err as Error).message, spans }, 'tracing: exporting spans failed; they are dropped until the collector answers');
      this.#failing = true;
    }
  }

  /** Sends what is queued (bounded by `deadlineMs`), then stops. */
  async shutdown(deadlineMs: number): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const until = Date.now() + deadlineMs;
    const flush = async () => {
      await this.#exporting;
      while (this.#queue.length > 0 && Date.now() < until) await this.#exportBatch();
    };
    await Promise.race([flush(), new Promise((resolve) => setTimeout(resolve, deadlineMs).unref())]);
    // Past the deadline an export still hanging is abandoned (close() would wait for it).
    await this.#agent?.destroy().catch(() => undefined);
    this.#agent = undefined;
    this.#settings = undefined;
  }
}

/** The process's exporter. */
export const spanExporter = new SpanExporter();

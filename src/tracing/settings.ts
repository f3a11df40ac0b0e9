/**
 * What tracing does, from the `tracing:` block and the standard OpenTelemetry
 * variables (the SDK environment specification): OTEL_SDK_DISABLED,
 * OTEL_TRACES_EXPORTER=none, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
 * OTEL_EXPORTER_OTLP_ENDPOINT (+ /v1/traces), OTEL_EXPORTER_OTLP_HEADERS,
 * OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER_ARG. A key in the file wins over its
 * variable, as code-given options win over the environment in the SDKs.
 * Resolved once per config snapshot; undefined = tracing off.
 */
import type { TracingConfig } from '../config/schema.ts';

export interface TracingSettings {
  readonly endpoint: string;
  readonly serviceName: string;
  /** Share of new (root) traces sampled, 0..1. */
  readonly sampleRatio: number;
  readonly upstreamSpans: boolean;
  readonly headers: Readonly<Record<string, string>>;
  readonly maxQueue: number;
  readonly maxBatch: number;
  readonly flushInterval: number;
  readonly exportTimeout: number;
}

const DEFAULT_ENDPOINT = 'http://localhost:4318/v1/traces';

const DEFAULTS = { maxQueue: 2048, maxBatch: 512, flushInterval: 1_000, exportTimeout: 10_000 } as const;

/** The settings in force, or undefined when tracing is off (no block and no endpoint variable, or turned off). */
export function tracingSettings(config: TracingConfig | undefined, env: NodeJS.ProcessEnv): TracingSettings | undefined {
  if (config?.enabled === false) return undefined;
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return undefined;
  if (!config && env.OTEL_TRACES_EXPORTER?.trim().toLowerCase() === 'none') return undefined;
  const endpoint = config?.endpoint ?? envEndpoint(env);
  if (!config && endpoint === undefined) return undefined;
  return {
    endpoint: endpoint ?? DEFAULT_ENDPOINT,
    serviceName: config?.serviceName ?? (env.OTEL_SERVICE_NAME?.trim() || 'sidecar'),
    sampleRatio: config?.sampleRatio ?? envRatio(env.OTEL_TRACES_SAMPLER_ARG) ?? 1,
    upstreamSpans: config?.upstreamSpans ?? false,
    headers: config?.headers ?? envHeaders(env.OTEL_EXPORTER_OTLP_HEADERS),
    maxQueue: config?.maxQueue ?? DEFAULTS.maxQueue,
    maxBatch: Math.min(config?.maxBatch ?? DEFAULTS.maxBatch, config?.maxQueue ?? DEFAULTS.maxQueue),
    flushInterval: config?.flushInterval ?? DEFAULTS.flushInterval,
    exportTimeout: config?.exportTimeout ?? DEFAULTS.exportTimeout,
  };
}

function envEndpoint(env: NodeJS.ProcessEnv): string | undefined {
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  if (traces) return traces;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  return base ? `${base.replace(/\/+$/, '')}/v1/traces` : undefined;
}

/** A ratio in 0..1, else undefined (the SDKs ignore a bad value too). */
function envRatio(text: string | undefined): number | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const ratio = Number(text);
  return Number.isFinite(ratio) && ratio >= 0 && ratio <= 1 ? ratio : undefined;
}

/** `key1=value1,key2=value2`, values percent-decoded (W3C Baggage format, as the spec says). */
function envHeaders(text: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const pair of (text ?? '').split(',')) {
    const equals = pair.indexOf('=');
    if (equals <= 0) continue;
    const name = pair.slice(0, equals).trim().toLowerCase();
    try {
      headers[name] = decodeURIComponent(pair.slice(equals + 1).trim());
    } catch {
      headers[name] = pair.slice(equals + 1).trim();
    }
  }
  return headers;
}

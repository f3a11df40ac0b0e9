/**
 * Fallback load generator when wrk is not installed: autocannon in its own
 * process (never inside the process under test). Prints one JSON line in the
 * same shape the wrk parser returns. Usage:
 * `node bench/clients/autocannon.ts '{"url":"http://127.0.0.1:P/","connections":50,"seconds":5,"path":"/","host":"..."}'`.
 */
import { createRequire } from 'node:module';

interface Options {
  url: string;
  connections: number;
  seconds: number;
  /** Request target; an absolute URL for forward-proxy runs. */
  path?: string;
  host?: string;
  headers?: Record<string, string>;
  /** POST a body of this many bytes with every request. */
  bodyBytes?: number;
}

interface AutocannonResult {
  duration: number;
  requests: { total: number };
  latency: { p50: number; p99: number };
  errors: number;
  timeouts: number;
  non2xx: number;
}

type Autocannon = (options: Record<string, unknown>) => Promise<AutocannonResult>;
// autocannon ships no types; this is the part of its API used here.
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

const options = JSON.parse(process.argv[2] ?? '{}') as Options;
const result = await autocannon({
  url: options.url,
  connections: options.connections,
  duration: options.seconds,
  requests: [
    options.bodyBytes
      ? { method: 'POST', path: options.path ?? new URL(options.url).pathname, body: Buffer.alloc(options.bodyBytes, 'u') }
      : { method: 'GET', path: options.path ?? new URL(options.url).pathname },
  ],
  headers: { ...options.headers, ...(options.host ? { host: options.host } : {}) },
});
process.stdout.write(`${JSON.stringify({
  rps: result.requests.total / Math.max(result.duration, 0.001),
  p50ms: result.latency.p50,
  p99ms: result.latency.p99,
  requests: result.requests.total,
  errors: result.errors + result.timeouts + result.non2xx,
})}\n`);
process.exit(0);

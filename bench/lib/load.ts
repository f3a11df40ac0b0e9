/**
 * Drives load from a separate process pinned to the load CPU: wrk when it is
 * installed (latency from `--latency`, absolute-form and uploads through a
 * generated Lua script), else autocannon, the CONNECT bulk client for
 * tunnels, and a constant-rate client (hey, or clients/paced.ts) for the
 * latency scenarios. Every run also measures how busy the upstream and the
 * load generator were: a run where either is near a full core measured them,
 * not the proxy.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HOST } from './net.ts';
import { NODE, reapedChildrenCpuSeconds, start, stop, treeCpuSeconds, treeRss, type Proc } from './procs.ts';

/** One measurement of one peer in one scenario and round. */
export interface Measurement {
  rps?: number;
  /** CONNECT bulk only: MB/s (10^6 bytes). */
  mbps?: number;
  p50ms?: number;
  p99ms?: number;
  /** Latency scenarios only. */
  p999ms?: number;
  /** Latency scenarios: the rate asked for (req/s), and requests that found their connection still busy (paced client). */
  targetRps?: number;
  late?: number;
  requests?: number;
  /** Non-2xx answers, socket errors and timeouts together. */
  errors: number;
  /** Peak resident memory of the proxy's process tree during the run. */
  rssBytes?: number;
  /** CPU (user + system) the proxy's process tree spent per request, or per MB for CONNECT bulk, in microseconds. */
  cpuUs?: number;
  /** Share of one core (0..1) used during the run by the proxy, the upstream and the load generator. */
  proxyCpu?: number;
  upstreamCpu?: number;
  loadCpu?: number;
}

/** The processes watched during a run: the proxy (RSS, CPU) and the upstream it forwards to (CPU). */
export interface Watch {
  proxy?: number;
  upstream?: number;
}

export interface HttpLoad {
  port: number;
  /** Origin-form path, or an absolute URL for forward proxies. */
  target: string;
  connections: number;
  seconds: number;
  /** HTTPS (wrk only). */
  https?: boolean;
  /** Each request on a new connection (`Connection: close`). */
  newConnections?: boolean;
  /** Headers of every request (Accept-Encoding for the compression scenarios). */
  headers?: Readonly<Record<string, string>>;
  /** POST a body of this many bytes with every request (the uploads scenario). */
  bodyBytes?: number;
}

export interface LoadContext {
  loader: 'wrk' | 'autocannon';
  wrkPath?: string;
  /** h2load (nghttp2-client), for the HTTP/2 scenarios. */
  h2loadPath?: string;
  /** hey, the constant-rate client of the latency scenarios (else clients/paced.ts). */
  heyPath?: string;
  tmpDir: string;
  /** CPU list for the load generator (taskset). */
  cpu?: string;
}

const BENCH = new URL('..', import.meta.url).pathname;
let sequence = 0;

/** Waits for a process with a hard deadline; kills it when the deadline passes. */
async function finished(proc: Proc, timeoutMs: number): Promise<void> {
  if (proc.exit !== undefined) return;
  const exited = new Promise<void>((resolve) => proc.child.once('exit', () => resolve()));
  const timedOut = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), timeoutMs).unref());
  if ((await Promise.race([exited, timedOut])) === 'timeout') {
    await stop(proc, 500);
    throw new Error(`${proc.name} did not finish within ${timeoutMs}ms`);
  }
}

/** What the processes used during one run. */
interface Usage {
  /** Peak RSS of the proxy's tree, sampled every 250 ms. */
  rssBytes?: number;
  /** CPU (user + system) the proxy's tree spent from just before the run started to its end. */
  cpuSeconds?: number;
  /** Shares of one core over the run's wall time. */
  proxyCpu?: number;
  upstreamCpu?: number;
  loadCpu?: number;
}

const cpuOf = (pid: number | undefined) => (pid === undefined ? 0 : treeCpuSeconds(pid));

/**
 * Runs `run` (which starts and awaits the one load process) while watching
 * the proxy (peak RSS, CPU) and the upstream (CPU); the load generator's CPU
 * is what this process's reaped children gained meanwhile.
 */
async function withUsage<T>(watch: Watch, run: () => Promise<T>): Promise<[T, Usage]> {
  const { proxy, upstream } = watch;
  const before = { proxy: cpuOf(proxy), upstream: cpuOf(upstream), load: reapedChildrenCpuSeconds(), at: process.hrtime.bigint() };
  let peak = 0;
  const timer = proxy === undefined ? undefined : setInterval(() => {
    peak = Math.max(peak, treeRss(proxy));
  }, 250);
  try {
    const result = await run();
    const wall = Number(process.hrtime.bigint() - before.at) / 1e9;
    const cpuSeconds = proxy === undefined ? undefined : cpuOf(proxy) - before.proxy;
    return [result, {
      rssBytes: peak || undefined,
      cpuSeconds,
      proxyCpu: cpuSeconds === undefined ? undefined : cpuSeconds / wall,
      upstreamCpu: upstream === undefined ? undefined : (cpuOf(upstream) - before.upstream) / wall,
      loadCpu: (reapedChildrenCpuSeconds() - before.load) / wall,
    }];
  } finally {
    if (timer) clearInterval(timer);
  }
}

/** The usage fields of a Measurement. */
function usageFields(usage: Usage, units: number | undefined): Partial<Measurement> {
  return { rssBytes: usage.rssBytes, cpuUs: perUnit(usage.cpuSeconds, units), proxyCpu: usage.proxyCpu, upstreamCpu: usage.upstreamCpu, loadCpu: usage.loadCpu };
}

/** CPU microseconds per unit of work (request, MB), when both are known. */
function perUnit(cpuSeconds: number | undefined, units: number | undefined): number | undefined {
  return cpuSeconds !== undefined && units ? (cpuSeconds * 1e6) / units : undefined;
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses `wrk --latency` output (req/s, p50/p99, request and error counts). */
export function parseWrk(text: string): Measurement {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text);
  if (!rps) throw new Error(`unreadable wrk output: ${text.trim().split('\n').slice(-3).join(' | ')}`);
  const latency = (pct: string): number | undefined => {
    const m = new RegExp(`^\\s+${pct}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, 'm').exec(text);
    return m ? Number(m[1]) * UNIT_MS[m[2]] : undefined;
  };
  const requests = /(\d+) requests in/.exec(text);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  // Read errors are connections the server closed; wrk counts them, so do we.
  const socketErrors = socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0;
  return {
    rps: Number(rps[1]),
    p50ms: latency('50'),
    p99ms: latency('99'),
    requests: requests ? Number(requests[1]) : undefined,
    errors: (non2xx ? Number(non2xx[1]) : 0) + socketErrors,
  };
}

function loadArgs(load: HttpLoad, ctx: LoadContext, id: number): [string, string[]] {
  const url = `${load.https ? 'https' : 'http'}://${HOST}:${load.port}`;
  const absolute = load.target.startsWith('http://');
  if (ctx.loader === 'wrk') {
    const args = ['-t1', `-c${load.connections}`, `-d${load.seconds}s`, '--latency', '--timeout', '5s'];
    // wrk opens a new connection when the answer closes it: a TCP and TLS handshake per request.
    if (load.newConnections) args.push('-H', 'Connection: close');
    for (const [name, value] of Object.entries(load.headers ?? {})) args.push('-H', `${name}: ${value}`);
    if (absolute) {
      // wrk builds the request once from these fields: an absolute-form target and the origin's Host.
      const script = join(ctx.tmpDir, `absolute-${id}.lua`);
      writeFileSync(script, `wrk.path = ${JSON.stringify(load.target)}\nwrk.headers["Host"] = ${JSON.stringify(new URL(load.target).host)}\n`);
      args.push('-s', script);
    } else if (load.bodyBytes) {
      // The body is built once; wrk sends it with a Content-Length on every request.
      const script = join(ctx.tmpDir, `upload-${id}.lua`);
      writeFileSync(script, `wrk.method = "POST"\nwrk.body = string.rep("u", ${load.bodyBytes})\nwrk.headers["Content-Type"] = "application/octet-stream"\n`);
      args.push('-s', script);
    }
    return [ctx.wrkPath ?? 'wrk', [...args, absolute ? `${url}/` : `${url}${load.target}`]];
  }
  if (load.https || load.newConnections) throw new Error('the HTTPS scenarios need wrk (autocannon does not take the self-signed certificate)');
  const options = {
    url: `${url}${absolute ? '/' : load.target}`,
    connections: load.connections,
    seconds: load.seconds,
    path: load.target,
    host: absolute ? new URL(load.target).host : undefined,
    headers: load.headers,
    bodyBytes: load.bodyBytes,
  };
  return [NODE, [join(BENCH, 'clients/autocannon.ts'), JSON.stringify(options)]];
}

/** Runs HTTP load against port, watching the proxy and the upstream. */
export async function runHttp(load: HttpLoad, ctx: LoadContext, watch: Watch = {}): Promise<Measurement> {
  const id = ++sequence;
  const out = join(ctx.tmpDir, `load-${id}.out`);
  const [cmd, args] = loadArgs(load, ctx, id);
  const [, usage] = await withUsage(watch, () => {
    const proc = start(`${ctx.loader}#${id}`, cmd, args, out, { cpu: ctx.cpu });
    return finished(proc, (load.seconds + 20) * 1000);
  });
  const text = readFileSync(out, 'utf8');
  const result = ctx.loader === 'wrk' ? parseWrk(text) : (JSON.parse(text.trim().split('\n').pop() ?? '{}') as Measurement);
  if (result.rps === undefined) throw new Error(`${ctx.loader} printed no result: ${text.slice(-300)}`);
  return { ...result, ...usageFields(usage, result.requests) };
}

/** HTTP/2 load with h2load: `streams` concurrent streams on each of `connections` connections. */
export interface H2Load {
  port: number;
  target: string;
  tls: boolean;
  /** gRPC unary calls: a POST of one framed message, with the gRPC headers. */
  grpc: boolean;
  connections: number;
  streams: number;
  seconds: number;
}

/** A gRPC request body: one message ("hello"), uncompressed, framed. */
const GRPC_REQUEST = Buffer.concat([Buffer.from([0, 0, 0, 0, 5]), Buffer.from('hello')]);

/** Runs h2load against port, watching the proxy and the upstream. */
export async function runH2(load: H2Load, ctx: LoadContext, watch: Watch = {}): Promise<Measurement> {
  const id = ++sequence;
  const out = join(ctx.tmpDir, `h2load-${id}.out`);
  const url = `${load.tls ? 'https' : 'http'}://${HOST}:${load.port}${load.target}`;
  const args = [`-c${load.connections}`, `-m${load.streams}`, `-D${load.seconds}`, '-t1'];
  if (load.grpc) {
    const body = join(ctx.tmpDir, 'grpc-request.bin');
    writeFileSync(body, GRPC_REQUEST);
    args.push('-d', body, '-H', 'content-type: application/grpc', '-H', 'te: trailers');
  }
  const [, usage] = await withUsage(watch, () => {
    const proc = start(`h2load#${id}`, ctx.h2loadPath ?? 'h2load', [...args, url], out, { cpu: ctx.cpu });
    return finished(proc, (load.seconds + 20) * 1000);
  });
  const result = parseH2load(readFileSync(out, 'utf8'));
  return { ...result, ...usageFields(usage, result.requests) };
}

/** Parses h2load's summary: req/s, requests done, failures and non-2xx; mean request time stands in for the median. */
export function parseH2load(text: string): Measurement {
  const rps = /finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(text);
  if (!rps) throw new Error(`unreadable h2load output: ${text.trim().split('\n').slice(-3).join(' | ')}`);
  const requests = /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(text);
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(text);
  const mean = /time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)/.exec(text);
  const failed = requests ? Number(requests[3]) + Number(requests[4]) + Number(requests[5]) : 0;
  const non2xx = codes ? Number(codes[2]) + Number(codes[3]) + Number(codes[4]) : 0;
  return {
    rps: Number(rps[1]),
    p50ms: mean ? Number(mean[1]) * UNIT_MS[mean[2]] : undefined,
    requests: requests ? Number(requests[1]) : undefined,
    errors: failed + non2xx,
  };
}

export interface ConnectLoad {
  /** Undefined: connect straight to the source (the "direct" baseline). */
  proxyPort?: number;
  targetPort: number;
  tunnels: number;
  seconds: number;
  warmupSeconds: number;
}

/** Runs the CONNECT bulk client; MB/s through the proxy. */
export async function runConnect(load: ConnectLoad, ctx: LoadContext, watch: Watch = {}): Promise<Measurement> {
  const id = ++sequence;
  const out = join(ctx.tmpDir, `connect-${id}.out`);
  // CPU over the whole client run, warm-up second included: it moves data too, at the same rate.
  const [, usage] = await withUsage(watch, () => {
    const proc = start(`connect-bulk#${id}`, NODE, [join(BENCH, 'clients/connect-bulk.ts'), JSON.stringify(load)], out, { cpu: ctx.cpu });
    return finished(proc, (load.seconds + load.warmupSeconds + 20) * 1000);
  });
  const text = readFileSync(out, 'utf8').trim();
  const line = text.split('\n').pop() ?? '';
  let parsed: { mbps: number; opened: number; tunnels: number; errorCount: number; errors: string[] };
  try {
    parsed = JSON.parse(line) as typeof parsed;
  } catch {
    throw new Error(`connect client printed no result: ${text.slice(-300)}`);
  }
  if (parsed.opened === 0) throw new Error(`no tunnel opened: ${parsed.errors.join('; ') || 'no answer'}`);
  const megabytes = parsed.mbps * (load.seconds + load.warmupSeconds);
  return { mbps: parsed.mbps, errors: Math.max(parsed.errorCount, parsed.tunnels - parsed.opened), ...usageFields(usage, megabytes) };
}

/** A latency run: `rate` req/s in all over `connections` keep-alive connections, for `seconds`. */
export interface LatencyLoad {
  port: number;
  target: string;
  connections: number;
  rate: number;
  seconds: number;
  /** hey (workers paced by tickers that start together: bursts of `connections`), or clients/paced.ts (evenly spaced). */
  client: 'hey' | 'paced';
}

/**
 * A percentile of latencies that hey rounded to `step` (its CSV has 0.1 ms
 * steps): the rank is placed inside its step as if the values there were
 * spread evenly (the grouped-data median), which resolves differences smaller
 * than a step when there are many samples.
 */
export function steppedPercentile(sorted: readonly number[], q: number, step: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const rank = q * sorted.length;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(rank) - 1));
  const value = sorted[index];
  let first = index;
  while (first > 0 && sorted[first - 1] === value) first--;
  let last = index;
  while (last < sorted.length - 1 && sorted[last + 1] === value) last++;
  const within = (rank - first) / (last - first + 1);
  return Math.max(0, value - step / 2 + Math.min(1, Math.max(0, within)) * step);
}

/** Parses `hey -o csv`: requests that dialled a connection are left out (a run's first ones); non-200 answers are errors. */
export function parseHeyCsv(text: string, seconds: number): Measurement {
  const lines = text.split('\n');
  if (!lines[0]?.startsWith('response-time,')) throw new Error(`unreadable hey output: ${text.trim().split('\n').slice(-3).join(' | ')}`);
  const latencies: number[] = [];
  let answered = 0;
  let errors = 0;
  let first = Infinity;
  let last = -Infinity;
  for (let i = 1; i < lines.length; i++) {
    const cols = lines[i].split(',');
    if (cols.length < 8) continue;
    answered++;
    const offset = Number(cols[7]);
    first = Math.min(first, offset);
    last = Math.max(last, offset);
    if (cols[6] !== '200') errors++;
    else if (Number(cols[1]) === 0) latencies.push(Number(cols[0]) * 1000);
  }
  latencies.sort((a, b) => a - b);
  const at = (q: number) => steppedPercentile(latencies, q, 0.1);
  // The rate held: requests over the span of their start times (hey's first moments go to dialling).
  const span = last > first ? last - first : seconds;
  return { rps: answered / Math.min(seconds, span + 1 / Math.max(answered / seconds, 1)), requests: answered, errors, p50ms: at(0.5), p99ms: at(0.99), p999ms: at(0.999) };
}

/** Runs a constant-rate client against port, watching the proxy and the upstream. */
export async function runLatency(load: LatencyLoad, ctx: LoadContext, watch: Watch = {}): Promise<Measurement> {
  const id = ++sequence;
  const out = join(ctx.tmpDir, `latency-${id}.out`);
  const url = `http://${HOST}:${load.port}${load.target}`;
  const [cmd, args] =
    load.client === 'hey'
      ? [ctx.heyPath ?? 'hey', ['-z', `${load.seconds}s`, '-c', String(load.connections), '-q', String(load.rate / load.connections), '-t', '5', '-disable-compression', '-o', 'csv', url]]
      : [NODE, [join(BENCH, 'clients/paced.ts'), JSON.stringify({ port: load.port, path: load.target, connections: load.connections, rate: load.rate, seconds: load.seconds })]];
  const [, usage] = await withUsage(watch, () => {
    const proc = start(`${load.client}#${id}`, cmd, args, out, { cpu: ctx.cpu });
    return finished(proc, (load.seconds + 20) * 1000);
  });
  const text = readFileSync(out, 'utf8');
  let result: Measurement;
  if (load.client === 'hey') result = parseHeyCsv(text, load.seconds);
  else {
    try {
      result = JSON.parse(text.trim().split('\n').pop() ?? '') as Measurement;
    } catch {
      throw new Error(`the paced client printed no result: ${text.slice(-300)}`);
    }
  }
  return { ...result, targetRps: load.rate, ...usageFields(usage, result.requests) };
}

/**
 * Drives load from a separate process pinned to the load CPU: wrk when it is
 * installed (latency from `--latency`, absolute-form through a generated Lua
 * script), else autocannon, and the CONNECT bulk client for tunnels.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HOST } from './net.ts';
import { NODE, start, stop, treeCpuSeconds, treeRss, type Proc } from './procs.ts';

/** One measurement of one peer in one scenario and round. */
export interface Measurement {
  rps?: number;
  /** CONNECT bulk only: MB/s (10^6 bytes). */
  mbps?: number;
  p50ms?: number;
  p99ms?: number;
  requests?: number;
  /** Non-2xx answers, socket errors and timeouts together. */
  errors: number;
  /** Peak resident memory of the proxy's process tree during the run. */
  rssBytes?: number;
  /** CPU (user + system) the proxy's process tree spent per request, or per MB for CONNECT bulk, in microseconds. */
  cpuUs?: number;
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
}

export interface LoadContext {
  loader: 'wrk' | 'autocannon';
  wrkPath?: string;
  /** h2load (nghttp2-client), for the HTTP/2 scenarios. */
  h2loadPath?: string;
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

/** What the proxy's process tree used during one run. */
interface Usage {
  /** Peak RSS, sampled every 250 ms. */
  rssBytes?: number;
  /** CPU (user + system) spent from just before the run started to its end. */
  cpuSeconds?: number;
}

/** Runs `run` while watching `pid` (and its children): peak RSS and CPU spent. */
async function withUsage<T>(pid: number | undefined, run: () => Promise<T>): Promise<[T, Usage]> {
  if (pid === undefined) return [await run(), {}];
  const cpuBefore = treeCpuSeconds(pid);
  let peak = 0;
  const timer = setInterval(() => {
    peak = Math.max(peak, treeRss(pid));
  }, 250);
  try {
    const result = await run();
    return [result, { rssBytes: peak || undefined, cpuSeconds: treeCpuSeconds(pid) - cpuBefore }];
  } finally {
    clearInterval(timer);
  }
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
  };
  return [NODE, [join(BENCH, 'clients/autocannon.ts'), JSON.stringify(options)]];
}

/** Runs HTTP load against port; `rssPid` is the process whose memory is sampled. */
export async function runHttp(load: HttpLoad, ctx: LoadContext, rssPid?: number): Promise<Measurement> {
  const id = ++sequence;
  const out = join(ctx.tmpDir, `load-${id}.out`);
  const [cmd, args] = loadArgs(load, ctx, id);
  const [, usage] = await withUsage(rssPid, () => {
    const proc = start(`${ctx.loader}#${id}`, cmd, args, out, { cpu: ctx.cpu });
    return finished(proc, (load.seconds + 20) * 1000);
  });
  const text = readFileSync(out, 'utf8');
  const result = ctx.loader === 'wrk' ? parseWrk(text) : (JSON.parse(text.trim().split('\n').pop() ?? '{}') as Measurement);
  if (result.rps === undefined) throw new Error(`${ctx.loader} printed no result: ${text.slice(-300)}`);
  return { ...result, rssBytes: usage.rssBytes, cpuUs: perUnit(usage.cpuSeconds, result.requests) };
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

/** Runs h2load against port; `rssPid` is the process whose memory is sampled. */
export async function runH2(load: H2Load, ctx: LoadContext, rssPid?: number): Promise<Measurement> {
  const id = ++sequence;
  const out = join(ctx.tmpDir, `h2load-${id}.out`);
  const url = `${load.tls ? 'https' : 'http'}://${HOST}:${load.port}${load.target}`;
  const args = [`-c${load.connections}`, `-m${load.streams}`, `-D${load.seconds}`, '-t1'];
  if (load.grpc) {
    const body = join(ctx.tmpDir, 'grpc-request.bin');
    writeFileSync(body, GRPC_REQUEST);
    args.push('-d', body, '-H', 'content-type: application/grpc', '-H', 'te: trailers');
  }
  const [, usage] = await withUsage(rssPid, () => {
    const proc = start(`h2load#${id}`, ctx.h2loadPath ?? 'h2load', [...args, url], out, { cpu: ctx.cpu });
    return finished(proc, (load.seconds + 20) * 1000);
  });
  const result = parseH2load(readFileSync(out, 'utf8'));
  return { ...result, rssBytes: usage.rssBytes, cpuUs: perUnit(usage.cpuSeconds, result.requests) };
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
export async function runConnect(load: ConnectLoad, ctx: LoadContext, rssPid?: number): Promise<Measurement> {
  const id = ++sequence;
  const out = join(ctx.tmpDir, `connect-${id}.out`);
  // CPU over the whole client run, warm-up second included: it moves data too, at the same rate.
  const [, usage] = await withUsage(rssPid, () => {
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
  return { mbps: parsed.mbps, errors: Math.max(parsed.errorCount, parsed.tunnels - parsed.opened), rssBytes: usage.rssBytes, cpuUs: perUnit(usage.cpuSeconds, megabytes) };
}

/**
 * The measuring loop: rounds outside, scenarios inside, peers innermost in an
 * order rotated each round, so slow drift of the machine spreads over all
 * peers instead of favouring whoever runs first. Each (scenario, peer) cell is
 * checked once for a correct answer before any load is sent.
 */
import { truncateSync } from 'node:fs';
import { runConnect, runH2, runHttp, runLatency, type LoadContext, type Measurement, type Watch } from './load.ts';
import { probe, probeConnect, probeH2 } from './net.ts';
import type { Peer } from './peers.ts';
import { tail } from './procs.ts';
import type { Scenario } from './scenarios.ts';

/** All samples of one peer in one scenario, or why there are none. */
export interface Cell {
  scenario: string;
  peer: string;
  samples: Measurement[];
  failures: string[];
  skipped?: string;
}

export interface Plan {
  rounds: number;
  seconds: number;
  /** Seconds of each latency measurement (`hey -z`). */
  latencySeconds: number;
  warmupSeconds: number;
  upstreamPort: number;
  tcpSourcePort: number;
  load: LoadContext;
  /** Pids of the upstreams, whose CPU use is measured with every run: the throughput one, the node one, the TCP source, the gRPC upstream. */
  upstreams: { main?: number; node?: number; tcp?: number; grpc?: number };
}

/** The upstream process a scenario's requests end at (none for static files). */
function upstreamOf(scenario: Scenario, plan: Plan): number | undefined {
  if (scenario.upstream === 'node' || scenario.kind === 'compress') return plan.upstreams.node;
  if (scenario.kind === 'connect') return plan.upstreams.tcp;
  if (scenario.kind === 'grpc') return plan.upstreams.grpc;
  if (scenario.kind === 'static') return undefined;
  return plan.upstreams.main;
}

type Target =
  | { http: { port: number; target: string; https?: boolean; newConnections?: boolean; headers?: Readonly<Record<string, string>>; bodyBytes?: number } }
  | { latency: { port: number; target: string } }
  | { h2: { port: number; target: string; tls: boolean; grpc: boolean; streams: number } }
  | { connect: { proxyPort?: number } }
  | { missing: string };

function targetOf(scenario: Scenario, peer: Peer, plan: Plan): Target {
  const isDirect = peer.name === 'direct';
  switch (scenario.kind) {
    case 'ingress': {
      const port = scenario.upstream === 'node' ? peer.ingressNode : peer.ingress;
      return port ? { http: { port, target: scenario.path, bodyBytes: scenario.bodyBytes } } : { missing: scenario.upstream === 'node' ? 'no reverse-proxy port to the node upstream' : 'no reverse-proxy port' };
    }
    case 'latency':
      return peer.ingress ? { latency: { port: peer.ingress, target: scenario.path } } : { missing: 'no reverse-proxy port' };
    case 'static':
      return peer.static ? { http: { port: peer.static, target: scenario.path } } : { missing: 'no static port' };
    case 'https':
      if (plan.load.loader !== 'wrk') return { missing: 'the HTTPS scenarios need wrk' };
      return peer.https ? { http: { port: peer.https, target: scenario.path, https: true, newConnections: scenario.newConnections } } : { missing: 'no HTTPS port' };
    case 'compress':
      if (!peer.compress) return { missing: 'no compressing port' };
      if (scenario.encoding && !peer.encodings?.includes(scenario.encoding)) return { missing: `cannot produce ${scenario.encoding} here` };
      return { http: { port: peer.compress, target: scenario.path, headers: scenario.headers } };
    case 'forward':
      if (isDirect) return { http: { port: plan.upstreamPort, target: scenario.path } };
      return peer.forward
        ? { http: { port: peer.forward, target: `http://127.0.0.1:${plan.upstreamPort}${scenario.path}` } }
        : { missing: 'no forward-proxy port' };
    case 'connect':
      if (isDirect) return { connect: {} };
      return peer.forward ? { connect: { proxyPort: peer.forward } } : { missing: 'no forward-proxy port' };
    case 'h2':
    case 'grpc': {
      if (!plan.load.h2loadPath) return { missing: 'the HTTP/2 scenarios need h2load (nghttp2-client)' };
      const port = scenario.kind === 'h2' ? peer.h2 : peer.grpc;
      if (!port) return { missing: scenario.kind === 'h2' ? 'no HTTP/2 (TLS) port' : 'no gRPC (h2c) port' };
      return { h2: { port, target: scenario.path, tls: scenario.kind === 'h2', grpc: scenario.kind === 'grpc', streams: scenario.streams ?? 1 } };
    }
  }
}

/** One correct answer before load; returns the reason when the peer answers wrong. */
async function smoke(scenario: Scenario, target: Target, plan: Plan): Promise<string | undefined> {
  try {
    if ('http' in target || 'latency' in target) {
      const http = 'http' in target ? target.http : { ...target.latency, headers: undefined, https: false };
      const res = await probe(http.port, http.target, 5000, http.headers, http.https ? 'https' : 'http');
      if (scenario.encoding !== undefined) {
        const encoding = res.headers['content-encoding'];
        if (res.status !== 200 || encoding !== scenario.encoding || res.bytes >= scenario.expectBytes) {
          return `GET ${http.target} answered ${res.status}, content-encoding ${String(encoding)}, ${res.bytes} bytes (want 200, ${scenario.encoding}, fewer than ${scenario.expectBytes})`;
        }
      } else if (res.status !== 200 || res.bytes !== scenario.expectBytes) {
        return `GET ${http.target} answered ${res.status} with ${res.bytes} bytes (want 200 with ${scenario.expectBytes}): ${res.text.slice(0, 160)}`;
      }
    } else if ('h2' in target) {
      const res = await probeH2(target.h2.port, target.h2.target, target.h2.tls, target.h2.grpc, 5000);
      if (res.status !== 200 || res.bytes !== scenario.expectBytes || (target.h2.grpc && res.grpcStatus !== '0')) {
        return `HTTP/2 ${target.h2.target} answered ${res.status}, grpc-status ${String(res.grpcStatus)}, ${res.bytes} bytes (want 200 with ${scenario.expectBytes}${target.h2.grpc ? ', grpc-status 0' : ''})`;
      }
    } else if ('connect' in target && target.connect.proxyPort !== undefined) {
      const status = await probeConnect(target.connect.proxyPort, `127.0.0.1:${plan.tcpSourcePort}`, 5000);
      if (status !== 200) return `CONNECT 127.0.0.1:${plan.tcpSourcePort} answered ${status}`;
    }
    return undefined;
  } catch (err) {
    const code = (err as { code?: string }).code;
    const port = 'http' in target ? target.http.port : 'latency' in target ? target.latency.port : 'h2' in target ? target.h2.port : 'connect' in target ? target.connect.proxyPort : undefined;
    if (code === 'ECONNREFUSED') return `nothing listens on 127.0.0.1:${port} (its ${scenario.kind} listener is not bound)`;
    return `check request failed: ${err instanceof Error ? err.message : String(err)}`;
  }
}

async function once(scenario: Scenario, peer: Peer, target: Target, plan: Plan, seconds: number): Promise<Measurement> {
  for (const file of peer.truncate ?? []) {
    try {
      truncateSync(file, 0);
    } catch {
      // not created yet
    }
  }
  const watch: Watch = { proxy: peer.proc?.pid, upstream: upstreamOf(scenario, plan) };
  if ('http' in target) {
    return runHttp({ ...target.http, connections: scenario.connections, seconds }, plan.load, watch);
  }
  if ('latency' in target) {
    const client = scenario.client === 'hey' && plan.load.heyPath ? 'hey' : 'paced';
    return runLatency({ ...target.latency, connections: scenario.connections, rate: scenario.rate ?? 1000, seconds, client }, plan.load, watch);
  }
  if ('h2' in target) {
    return runH2({ ...target.h2, connections: scenario.connections, seconds }, plan.load, watch);
  }
  if ('connect' in target) {
    const load = { ...target.connect, targetPort: plan.tcpSourcePort, tunnels: scenario.connections, seconds, warmupSeconds: 1 };
    return runConnect(load, plan.load, watch);
  }
  throw new Error(target.missing);
}

const pct = (share: number | undefined) => (share === undefined ? '-' : `${Math.round(share * 100)}%`);

function rotate<T>(items: readonly T[], by: number): T[] {
  const k = by % Math.max(items.length, 1);
  return [...items.slice(k), ...items.slice(0, k)];
}

const key = (scenario: string, peer: string) => `${scenario}|${peer}`;

/** Runs every round; `peers` holds the running ones, `skipped` why the others are not. */
export async function measure(scenarios: readonly Scenario[], peers: ReadonlyMap<string, Peer>, skipped: ReadonlyMap<string, string>, plan: Plan, log: (line: string) => void): Promise<Map<string, Cell>> {
  const cells = new Map<string, Cell>();
  for (const scenario of scenarios) {
    for (const name of scenario.peers) {
      const cell: Cell = { scenario: scenario.name, peer: name, samples: [], failures: [] };
      if (!peers.has(name)) cell.skipped = `peer not started: ${skipped.get(name) ?? 'unknown'}`;
      cells.set(key(scenario.name, name), cell);
    }
  }
  for (let round = 0; round < plan.rounds; round++) {
    for (const scenario of scenarios) {
      for (const name of rotate(scenario.peers, round)) {
        const cell = cells.get(key(scenario.name, name)) as Cell;
        const peer = peers.get(name);
        if (cell.skipped || !peer) continue;
        if (peer.proc?.exit !== undefined) {
          cell.skipped = `${name} exited (${peer.proc.exit}) during an earlier run: ${tail(peer.proc.logFile, 3)}`;
          continue;
        }
        const target = targetOf(scenario, peer, plan);
        if ('missing' in target) {
          cell.skipped = target.missing;
          continue;
        }
        if (round === 0) {
          const wrong = await smoke(scenario, target, plan);
          if (wrong) {
            cell.skipped = wrong;
            log(`  ${scenario.name} ${name}: skipped, ${wrong}`);
            continue;
          }
          // Warm-up (JIT, connection pools, page cache): measured, then thrown away. A latency
          // peer is warm from the throughput scenarios already: one second at the rate suffices.
          const warmup = scenario.kind === 'latency' ? 1 : plan.warmupSeconds;
          if (scenario.kind !== 'connect') await once(scenario, peer, target, plan, warmup).catch(() => undefined);
        }
        try {
          const m = await once(scenario, peer, target, plan, scenario.kind === 'latency' ? plan.latencySeconds : plan.seconds);
          cell.samples.push(m);
          const value = m.mbps !== undefined
            ? `${m.mbps.toFixed(1)} MB/s`
            : `${Math.round(m.rps ?? 0)} req/s${m.p50ms !== undefined && scenario.kind === 'latency' ? `, p50 ${m.p50ms.toFixed(3)} ms` : ''}${m.p99ms !== undefined ? `, p99 ${m.p99ms.toFixed(2)} ms` : ''}`;
          const busy = `upstream ${pct(m.upstreamCpu)}, load ${pct(m.loadCpu)}`;
          log(`  round ${round + 1}/${plan.rounds} ${scenario.name} ${name}: ${value}${m.errors ? `, ${m.errors} errors` : ''} (${busy})`);
        } catch (err) {
          const why = err instanceof Error ? err.message : String(err);
          cell.failures.push(why);
          log(`  round ${round + 1}/${plan.rounds} ${scenario.name} ${name}: failed, ${why}`);
        }
      }
    }
  }
  for (const cell of cells.values()) {
    if (!cell.skipped && cell.samples.length === 0) cell.skipped = `every run failed: ${cell.failures[0] ?? 'no result'}`;
  }
  return cells;
}

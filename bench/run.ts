/**
 * `npm run bench [-- --quick] [-- --scenario NAME]`: the sidecar against its
 * peers in one run (issues 7 and 22). Starts the upstreams (NGINX for the
 * throughput scenarios when installed, node:http for uploads and JSON), a TCP
 * source and every peer as separate processes on 127.0.0.1 (proxies pinned to
 * CPU 0, upstreams and load generator to CPU 1), measures interleaved rounds,
 * prints medians, ratios, latency added over direct, saturation flags and the
 * targets, and writes bench/results/latest.json and latest.svg.
 * Progress goes to stderr, the result table to stdout.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from './lib/args.ts';
import { measure } from './lib/measure.ts';
import { freePort, waitHttp, waitTcp } from './lib/net.ts';
import { ALL_PEERS, type Env, type Peer } from './lib/peers.ts';
import { hasTaskset, installCleanup, NODE, onExit, runMain, start, stopAll, treeRss, type Proc } from './lib/procs.ts';
import { memoryTable, summarize, table } from './lib/report.ts';
import { nginxUpstreamConf } from './lib/configs.ts';
import { SCENARIOS, selectScenarios } from './lib/scenarios.ts';
import { chart } from './lib/svg.ts';
import { checkTargets, targetsTable, tracingNote } from './lib/targets.ts';
import { ensureTools } from './lib/tools.ts';
import { makeDocumentRoot } from './lib/www.ts';
import { makeCertificate } from './lib/cert.ts';

const BENCH = new URL('.', import.meta.url).pathname;
const log = (line: string) => process.stderr.write(`${line}\n`);

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  installCleanup();
  const scenarios = selectScenarios(options.scenario);
  if (scenarios.length === 0) {
    log(`bench: no scenario matches "${options.scenario}"; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
    return 2;
  }
  const started = Date.now();
  const tools = ensureTools(options.install, log);
  for (const [tool, status] of Object.entries(tools)) if (!status.path) log(`setup: ${tool} ${status.missing}`);
  const loader = options.loader ?? (tools.wrk.path ? 'wrk' : 'autocannon');
  if (loader === 'wrk' && !tools.wrk.path) throw new Error(`--loader wrk, but wrk ${tools.wrk.missing}`);
  const cpus = os.availableParallelism();
  const pinned = options.pin && cpus >= 2 && hasTaskset();
  const cpuProxy = pinned ? '0' : undefined;
  const cpuLoad = pinned ? '1' : undefined;
  // The harness itself (RSS sampling, bookkeeping) stays off the proxy's CPU too.
  if (pinned) spawnSync('taskset', ['-a', '-p', '-c', cpuLoad as string, String(process.pid)], { stdio: 'ignore' });
  log(`bench: ${scenarios.length} scenario(s), ${options.rounds} round(s) of ${options.seconds}s, load: ${loader}, ` +
    (pinned ? 'proxies on CPU 0, upstream + load on CPU 1' : `not pinned (${!options.pin ? '--no-pin' : cpus < 2 ? 'one CPU' : 'no taskset'})`));

  const tmp = mkdtempSync(join(os.tmpdir(), 'sidecar-bench-'));
  const removeTmp = () => (options.keepTmp ? log(`bench: temp dir kept: ${tmp}`) : rmSync(tmp, { recursive: true, force: true }));
  onExit(removeTmp);
  try {
    const www = makeDocumentRoot(tmp);
    const nodeUpstreamPort = await freePort();
    const nodeUpstream = start('upstream', NODE, [join(BENCH, 'servers/upstream.ts'), String(nodeUpstreamPort)], join(tmp, 'upstream.log'), { cpu: cpuLoad });
    const tcpSourcePort = await freePort();
    const source = start('tcp-source', NODE, [join(BENCH, 'servers/tcp-source.ts'), String(tcpSourcePort)], join(tmp, 'tcp-source.log'), { cpu: cpuLoad });
    const upstreamDown = (await waitHttp(nodeUpstreamPort, '/', nodeUpstream, 10_000, 200)) ?? (await waitTcp(tcpSourcePort, source, 10_000));
    if (upstreamDown) throw new Error(`the upstream did not start: ${upstreamDown}`);
    // The throughput scenarios' upstream: NGINX, so that it is never the bottleneck (issue 22).
    const fair = await startNginxUpstream(tools.nginx.path, tmp, www, cpuLoad);
    if (typeof fair === 'string') {
      log(`bench: WARNING: ${fair}; the throughput scenarios use the node upstream, which shares CPU 1 with the load generator and saturates first: ratios against NGINX and HAProxy are compressed toward 1`);
    } else log(`bench: upstream of the throughput scenarios: NGINX (return 200 "hello", /1mib from disk) on ${cpuLoad ? `CPU ${cpuLoad}` : 'any CPU'}`);
    const upstreamPort = typeof fair === 'string' ? nodeUpstreamPort : fair.port;
    const upstreamKind = typeof fair === 'string' ? 'node' : 'nginx';

    const wanted = new Set(scenarios.flatMap((s) => s.peers));
    // The stand-in collector, only when a tracing peer runs; on the load CPU like the upstream.
    let otlpPort: number | undefined;
    if ([...wanted].some((name) => name.startsWith('sidecar-trace-'))) {
      otlpPort = await freePort();
      const sink = start('otlp-sink', NODE, [join(BENCH, 'servers/otlp-sink.ts'), String(otlpPort)], join(tmp, 'otlp-sink.log'), { cpu: cpuLoad });
      const sinkDown = await waitTcp(otlpPort, sink, 10_000);
      if (sinkDown) throw new Error(`the OTLP sink did not start: ${sinkDown}`);
    }
    // The h2c gRPC upstream, only when a gRPC scenario runs; on the load CPU like the HTTP upstream.
    let grpcUpstreamPort: number | undefined;
    let grpcUpstream: Proc | undefined;
    if (scenarios.some((scenario) => scenario.kind === 'grpc')) {
      grpcUpstreamPort = await freePort();
      grpcUpstream = start('grpc-upstream', NODE, [join(BENCH, 'servers/grpc-upstream.ts'), String(grpcUpstreamPort)], join(tmp, 'grpc-upstream.log'), { cpu: cpuLoad });
      const grpcDown = await waitTcp(grpcUpstreamPort, grpcUpstream, 10_000);
      if (grpcDown) throw new Error(`the gRPC upstream did not start: ${grpcDown}`);
    }
    const env: Env = { tmp, www, upstreamPort, nodeUpstreamPort, tcpSourcePort, tools, cpu: cpuProxy, readyMs: 20_000, otlpPort, tls: makeCertificate(tmp), grpcUpstreamPort };
    const peers = new Map<string, Peer>();
    const skipped = new Map<string, string>();
    const about = new Map<string, string>();
    for (const spec of ALL_PEERS) {
      if (!wanted.has(spec.name)) continue;
      about.set(spec.name, spec.about);
      try {
        peers.set(spec.name, await spec.start(env));
        log(`peer ${spec.name}: ready`);
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        skipped.set(spec.name, why);
        log(`peer ${spec.name}: SKIPPED, ${why.replace(/\n/g, '\n    ')}`);
      }
    }
    // RSS at start: every peer ready, none loaded yet.
    const startRss = new Map<string, number>();
    for (const [name, peer] of peers) {
      if (!peer.proc || !(name.startsWith('sidecar') || name.startsWith('undici-floor'))) continue;
      const bytes = treeRss(peer.proc.pid);
      if (bytes > 0) startRss.set(name, bytes);
    }

    const plan = {
      rounds: options.rounds,
      seconds: options.seconds,
      latencySeconds: options.latencySeconds,
      warmupSeconds: options.warmupSeconds,
      upstreamPort,
      tcpSourcePort,
      load: { loader, wrkPath: tools.wrk.path, h2loadPath: tools.h2load.path, heyPath: tools.hey.path, tmpDir: tmp, cpu: cpuLoad },
      upstreams: { main: typeof fair === 'string' ? nodeUpstream.pid : fair.proc.pid, node: nodeUpstream.pid, tcp: source.pid, grpc: grpcUpstream?.pid },
    } as const;
    if (!tools.hey.path && scenarios.some((s) => s.client === 'hey')) log(`bench: hey ${tools.hey.missing}: the latency scenarios use clients/paced.ts (evenly spaced requests) instead`);
    const cells = await measure(scenarios, peers, skipped, plan, log);
    const results = summarize(scenarios, cells);
    const targets = checkTargets(results, startRss);

    const subtitle = `${new Date().toISOString().slice(0, 16)}Z, ${loader}, ${options.rounds} round(s) x ${options.seconds}s, medians, ` +
      `${pinned ? 'proxy on CPU 0, upstream + load on CPU 1' : 'unpinned'}, Node ${process.versions.node}, ${cpus} CPUs`;
    process.stdout.write(`\nsidecar benchmark: ${subtitle}\n`);
    process.stdout.write(`upstream of the throughput scenarios: ${upstreamKind === 'nginx' ? 'NGINX' : 'node:http (NGINX missing: ratios against fast peers are compressed)'}\n`);
    process.stdout.write(`${table(results)}\n${memoryTable(startRss)}\n${targetsTable(targets)}\n${tracingNote(results) ?? ''}\n`);
    if (skipped.size > 0) {
      process.stdout.write('\nskipped peers\n');
      for (const [name, why] of skipped) process.stdout.write(`  ${name}: ${why.replace(/\n/g, '\n    ')}\n`);
    }

    const outDir = resolve(options.out ?? join(BENCH, 'results'));
    mkdirSync(outDir, { recursive: true });
    const report = {
      generatedAt: new Date().toISOString(),
      command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
      machine: { cpus, cpuModel: os.cpus()[0]?.model, node: process.versions.node, platform: `${os.platform()} ${os.release()}` },
      settings: { loader, rounds: options.rounds, seconds: options.seconds, latencySeconds: options.latencySeconds, warmupSeconds: options.warmupSeconds, pinned, quick: options.quick, upstream: upstreamKind, latencyClient: tools.hey.path ? 'hey' : 'paced' },
      peers: [...about].map(([name, text]) => ({ name, about: text, status: peers.has(name) ? 'ran' : 'skipped', reason: skipped.get(name) })),
      scenarios: results,
      startRssMB: Object.fromEntries([...startRss].map(([name, bytes]) => [name, Number((bytes / 2 ** 20).toFixed(1))])),
      targets,
      tracing: tracingNote(results)?.trim(),
      durationSeconds: Math.round((Date.now() - started) / 1000),
    };
    writeFileSync(join(outDir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(join(outDir, 'latest.svg'), chart(results.filter((r) => !r.latency), subtitle));
    process.stdout.write(`\nwrote ${join(outDir, 'latest.json')} and latest.svg (${report.durationSeconds}s)\n`);
    return 0;
  } finally {
    await stopAll();
  }
}

/** NGINX as the upstream (configs.ts nginxUpstreamConf) on the load CPU, or why not. */
async function startNginxUpstream(bin: string | undefined, tmp: string, www: string, cpu: string | undefined): Promise<{ port: number; proc: Proc } | string> {
  if (!bin) return 'nginx is not installed';
  const dir = join(tmp, 'nginx-upstream');
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, nginxUpstreamConf(dir, port, www));
  const proc = start('nginx-upstream', bin, ['-p', dir, '-e', join(dir, 'nginx-error.log'), '-c', conf], join(dir, 'nginx.out'), { cpu });
  const down = await waitHttp(port, '/1mib', proc, 10_000, 200);
  return down ? `the NGINX upstream did not start: ${down}` : { port, proc };
}

runMain('bench', main);

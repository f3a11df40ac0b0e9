/**
 * `npm run bench [-- --quick] [-- --scenario NAME]`: the sidecar against its
 * peers in one run (issue 7). Starts the upstream, a TCP source and every peer
 * as separate processes on 127.0.0.1 (proxies pinned to CPU 0, upstream and
 * load generator to CPU 1), measures interleaved rounds, prints medians and
 * ratios, and writes bench/results/latest.json and latest.svg.
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
import { hasTaskset, installCleanup, NODE, onExit, runMain, start, stopAll } from './lib/procs.ts';
import { summarize, table } from './lib/report.ts';
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
    const upstreamPort = await freePort();
    const upstream = start('upstream', NODE, [join(BENCH, 'servers/upstream.ts'), String(upstreamPort)], join(tmp, 'upstream.log'), { cpu: cpuLoad });
    const tcpSourcePort = await freePort();
    const source = start('tcp-source', NODE, [join(BENCH, 'servers/tcp-source.ts'), String(tcpSourcePort)], join(tmp, 'tcp-source.log'), { cpu: cpuLoad });
    const upstreamDown = (await waitHttp(upstreamPort, '/', upstream, 10_000, 200)) ?? (await waitTcp(tcpSourcePort, source, 10_000));
    if (upstreamDown) throw new Error(`the upstream did not start: ${upstreamDown}`);

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
    if (scenarios.some((scenario) => scenario.kind === 'grpc')) {
      grpcUpstreamPort = await freePort();
      const grpcUpstream = start('grpc-upstream', NODE, [join(BENCH, 'servers/grpc-upstream.ts'), String(grpcUpstreamPort)], join(tmp, 'grpc-upstream.log'), { cpu: cpuLoad });
      const grpcDown = await waitTcp(grpcUpstreamPort, grpcUpstream, 10_000);
      if (grpcDown) throw new Error(`the gRPC upstream did not start: ${grpcDown}`);
    }
    const env: Env = { tmp, www, upstreamPort, tcpSourcePort, tools, cpu: cpuProxy, readyMs: 20_000, otlpPort, tls: makeCertificate(tmp), grpcUpstreamPort };
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

    const plan = {
      rounds: options.rounds,
      seconds: options.seconds,
      warmupSeconds: options.warmupSeconds,
      upstreamPort,
      tcpSourcePort,
      load: { loader, wrkPath: tools.wrk.path, h2loadPath: tools.h2load.path, tmpDir: tmp, cpu: cpuLoad },
    } as const;
    const cells = await measure(scenarios, peers, skipped, plan, log);
    const results = summarize(scenarios, cells);
    const targets = checkTargets(results);

    const subtitle = `${new Date().toISOString().slice(0, 16)}Z, ${loader}, ${options.rounds} round(s) x ${options.seconds}s, medians, ` +
      `${pinned ? 'proxy on CPU 0, upstream + load on CPU 1' : 'unpinned'}, Node ${process.versions.node}, ${cpus} CPUs`;
    process.stdout.write(`\nsidecar benchmark: ${subtitle}\n`);
    process.stdout.write(`${table(results)}\n${targetsTable(targets)}\n${tracingNote(results) ?? ''}\n`);
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
      settings: { loader, rounds: options.rounds, seconds: options.seconds, warmupSeconds: options.warmupSeconds, pinned, quick: options.quick },
      peers: [...about].map(([name, text]) => ({ name, about: text, status: peers.has(name) ? 'ran' : 'skipped', reason: skipped.get(name) })),
      scenarios: results,
      targets,
      tracing: tracingNote(results)?.trim(),
      durationSeconds: Math.round((Date.now() - started) / 1000),
    };
    writeFileSync(join(outDir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(join(outDir, 'latest.svg'), chart(results, subtitle));
    process.stdout.write(`\nwrote ${join(outDir, 'latest.json')} and latest.svg (${report.durationSeconds}s)\n`);
    return 0;
  } finally {
    await stopAll();
  }
}

runMain('bench', main);

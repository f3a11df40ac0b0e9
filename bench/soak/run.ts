/**
 * `npm run soak [-- --minutes N] [--rate R]`: the sidecar as a real process
 * under a fixed-rate mix of normal, failing, aborted, slow and malformed
 * requests on ingress and egress, CONNECT tunnels and WebSockets (traffic.ts),
 * with a config reload every 30 s (by rewriting the file and by POST /reload,
 * in turn). It prints the sidecar's RSS, open handles and file descriptors at
 * start, middle and end, and the outcomes of every kind with the wrong ones
 * counted as errors. It passes when no exchange ended wrongly, the RSS at the
 * end is within 10% of the middle's (the start is still warming up), and the
 * sidecar exits 0 on SIGTERM at the end.
 *
 * Bounded: the mix runs for `--minutes` (default 10), at most MAX_IN_FLIGHT
 * exchanges at a time, each given up after 15 s.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { deadPort, startUpstreams } from './upstreams.ts';
import { EXPECTED, KINDS, Traffic, type Kind } from './traffic.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const RELOAD_EVERY_MS = 30_000;
const MAX_IN_FLIGHT = 200;
/** RSS at the end may exceed the middle's by this share. */
const RSS_GROWTH_LIMIT = 0.1;

interface Options {
  readonly minutes: number;
  /** Exchanges started per second, spread over the kinds in turn. */
  readonly rate: number;
}

function parseOptions(argv: readonly string[]): Options {
  let minutes = 10;
  let rate = 100;
  for (let i = 0; i < argv.length; i++) {
    const value = Number(argv[i + 1]);
    if (argv[i] === '--minutes' && value > 0) minutes = value;
    else if (argv[i] === '--rate' && value > 0) rate = value;
    else continue;
    i++;
  }
  return { minutes, rate };
}

function configYaml(upstreamPort: number, deadPortNumber: number, echoPort: number, routeTimeout: string): string {
  return `
admin: { listen: 127.0.0.1:0 }
log: { level: info, access: true }
upstreams:
  app:
    endpoints: [http://127.0.0.1:${upstreamPort}]
    breaker: { errorRate: 0.9, minRequests: 50, window: 10s, openFor: 2s }
  dead:
    endpoints: [http://127.0.0.1:${deadPortNumber}]
    breaker: { errorRate: 0.5, minRequests: 10, window: 10s, openFor: 1s }
ingress:
  listen: 127.0.0.1:0
  maxHeaderSize: 16KiB
  routes:
    - { name: dead, match: { path: /dead/ }, upstream: dead, retry: { attempts: 2 } }
    - { name: app, match: { path: / }, upstream: app, websocket: true, timeout: ${routeTimeout}, retry: { attempts: 2, on: [connect-failure, 502, 503] } }
egress:
  listen: 127.0.0.1:0
  routes:
    - { name: soak-internal, match: { host: soak.internal }, upstream: app }
    - { name: tcp-echo, match: { host: 127.0.0.1, ports: [${echoPort}] } }
`;
}

/** What the sidecar process looks like from outside. */
interface Sample {
  readonly label: string;
  readonly rssMb: number;
  readonly handles: number;
  readonly fds: number;
}

async function sample(label: string, pid: number, adminPort: number): Promise<Sample> {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const handles = Number(/^sidecar_nodejs_active_handles_total (\d+)/m.exec(metrics)?.[1] ?? -1);
  return { label, rssMb: Math.round(rssKb / 102.4) / 10, handles, fds: readdirSync(`/proc/${pid}/fd`).length };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const upstreams = await startUpstreams();
  const dead = await deadPort();
  const dir = mkdtempSync(join(tmpdir(), 'sidecar-soak-'));
  const file = join(dir, 'sidecar.yaml');
  writeFileSync(file, configYaml(upstreams.httpPort, dead, upstreams.echoPort, '10s'));

  // The flags of `npm start` (package.json): DEP0060 is http-proxy's util._extend, on every WebSocket.
  const child = spawn(process.execPath, ['--max-semi-space-size=8', '--disable-warning=DEP0060', join(ROOT, 'src/cli.ts'), '--config', file], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  let logLines = 0;
  let pending = '';
  const listening = new Promise<{ ingressPort: number; egressPort: number; adminPort: number }>((resolveListening, reject) => {
    child.once('exit', (code) => reject(new Error(`the sidecar exited with code ${code} before listening`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      let newline: number;
      while ((newline = pending.indexOf('\n')) !== -1) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        logLines++;
        if (line.includes('"sidecar listening"')) resolveListening(JSON.parse(line));
      }
    });
  });
  const ports = await listening;
  const pid = child.pid!;
  const traffic = new Traffic({ ingress: ports.ingressPort, egress: ports.egressPort, echo: upstreams.echoPort });

  const outcomes = new Map<Kind, Map<string, number>>(KINDS.map((kind) => [kind, new Map()]));
  let inFlight = 0;
  let skipped = 0;
  let started = 0;
  const launch = (kind: Kind) => {
    if (inFlight >= MAX_IN_FLIGHT) {
      skipped++;
      return;
    }
    inFlight++;
    started++;
    void traffic.run(kind).then((outcome) => {
      inFlight--;
      const counts = outcomes.get(kind)!;
      counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
    });
  };

  const durationMs = options.minutes * 60_000;
  const samples: Sample[] = [];
  const reloads = { ok: 0, failed: 0 };
  const t0 = Date.now();
  let next = 0;
  let reloadCount = 0;
  let nextReload = t0 + RELOAD_EVERY_MS;
  let middleTaken = false;
  const tickMs = 20;
  const perTick = options.rate * (tickMs / 1000);
  let owed = 0;
  console.log(`soak: ${options.minutes} min at ${options.rate} exchanges/s over ${KINDS.length} kinds; sidecar pid ${pid}; config ${file}`);

  samples.push(await sample('start', pid, ports.adminPort));
  while (Date.now() - t0 < durationMs) {
    owed += perTick;
    while (owed >= 1) {
      launch(KINDS[next++ % KINDS.length]);
      owed--;
    }
    const now = Date.now();
    if (now >= nextReload) {
      nextReload += RELOAD_EVERY_MS;
      reloadCount++;
      const timeout = reloadCount % 2 === 0 ? '10s' : '11s';
      writeFileSync(file, configYaml(upstreams.httpPort, dead, upstreams.echoPort, timeout));
      if (reloadCount % 2 === 0) {
        // The other half of the reloads goes through the watcher only.
        const res = await fetch(`http://127.0.0.1:${ports.adminPort}/reload`, { method: 'POST' }).catch(() => undefined);
        if (res?.ok) reloads.ok++;
        else reloads.failed++;
      }
    }
    if (!middleTaken && now - t0 >= durationMs / 2) {
      middleTaken = true;
      samples.push(await sample('middle', pid, ports.adminPort));
      console.log(`soak: middle: ${started} exchanges started, ${inFlight} in flight`);
    }
    await sleep(tickMs);
  }
  const drainUntil = Date.now() + 20_000;
  while (inFlight > 0 && Date.now() < drainUntil) await sleep(50);
  samples.push(await sample('end', pid, ports.adminPort));
  const metrics = await (await fetch(`http://127.0.0.1:${ports.adminPort}/metrics`)).text();
  const reloadMetric = (result: string) => Number(new RegExp(`^sidecar_config_reloads_total\\{result="${result}"\\} (\\d+)`, 'm').exec(metrics)?.[1] ?? 0);

  child.kill('SIGTERM');
  const exitCode = await Promise.race([exited, sleep(30_000).then(() => 'no exit within 30 s')]);
  await traffic.close();
  await upstreams.close();
  rmSync(dir, { recursive: true, force: true });

  // The report.
  console.log('\nsidecar process   RSS MB   handles   fds');
  for (const s of samples) console.log(`${s.label.padEnd(16)}  ${String(s.rssMb).padStart(6)}   ${String(s.handles).padStart(7)}   ${String(s.fds).padStart(3)}`);
  console.log('\nkind                 total   outcomes                       errors');
  let errors = 0;
  for (const kind of KINDS) {
    const counts = outcomes.get(kind)!;
    let total = 0;
    let wrong = 0;
    const parts: string[] = [];
    for (const [outcome, count] of [...counts].sort((a, b) => b[1] - a[1])) {
      total += count;
      if (!EXPECTED[kind].includes(outcome)) wrong += count;
      parts.push(`${outcome}:${count}`);
    }
    errors += wrong;
    console.log(`${kind.padEnd(19)}  ${String(total).padStart(6)}   ${parts.join(' ').padEnd(30)} ${wrong}`);
  }
  const middle = samples.find((s) => s.label === 'middle');
  const end = samples[samples.length - 1];
  const growth = middle ? end.rssMb / middle.rssMb - 1 : 0;
  console.log(`\nexchanges: ${started} started, ${skipped} skipped (over ${MAX_IN_FLIGHT} in flight), ${errors} ended wrongly`);
  console.log(`reloads: ${reloadCount} (${reloads.ok} by POST /reload answered 200, ${reloads.failed} not); sidecar counted ${reloadMetric('success')} successful, ${reloadMetric('failure')} failed`);
  console.log(`log lines read from the sidecar's stdout: ${logLines}`);
  console.log(`RSS end vs middle: ${(growth * 100).toFixed(1)}% (limit ${RSS_GROWTH_LIMIT * 100}%)`);
  console.log(`exit after SIGTERM: ${exitCode}`);
  const passed = errors === 0 && growth <= RSS_GROWTH_LIMIT && exitCode === 0 && reloads.failed === 0;
  console.log(passed ? 'PASS' : 'FAIL');
  return passed ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);

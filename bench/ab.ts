/**
 * `npm run bench:ab -- [--a REV] [--b REV] [--rounds N] [--path P]`: is
 * revision B cheaper than revision A? Both sidecars run at the same time,
 * both pinned to CPU 0, each loaded by its own wrk from CPU 1, and the CPU
 * each spends per request is compared. Run one after the other, two builds
 * see a different machine (on these shared hosts the same code measured 65
 * and 111 us per request a minute apart); run side by side, a slow phase
 * slows both alike. Sequential pairs of the same code spread 0.86-1.27;
 * side by side, single rounds 0.97-1.06 and medians of 6 rounds within 1%
 * of 1, so a change of about 2% or more shows. The ratio can exaggerate a
 * real difference (the cheaper side gets more of the core and batches
 * more): it says whether a change helps, the full bench by how much.
 *
 * Each round starts two fresh sidecars (same history), in an order that
 * alternates, so whoever starts first gets no lasting edge. A REV is any git
 * revision, checked out into a temporary worktree that shares this
 * checkout's node_modules; `.` (the default for B) is the working tree.
 * A side may also be a Node peer of the bench (`--a peer:undici-floor`), to
 * compare programs rather than revisions. `--a-tracing R` / `--b-tracing R`
 * turn tracing on for that side with sampleRatio R, exporting to a local
 * OTLP sink (`--a-tracing 1` with the same revision on both sides: what
 * tracing every request costs).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runHttp, type LoadContext, type Measurement } from './lib/load.ts';
import { freePort, waitHttp } from './lib/net.ts';
import { ALL_PEERS, launchSidecar, type Env, type Peer, type PeerSpec } from './lib/peers.ts';
import { hasTaskset, installCleanup, NODE, onExit, runMain, start, stop, stopAll } from './lib/procs.ts';
import { median } from './lib/report.ts';
import { ensureTools } from './lib/tools.ts';
import { makeDocumentRoot } from './lib/www.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const log = (line: string) => process.stderr.write(`${line}\n`);

interface Side {
  label: 'A' | 'B';
  /** Tracing's sampleRatio on this side (undefined: the config has no tracing block). */
  tracing?: number;
  /** The checkout of a sidecar side (a git revision, or `.`). */
  root?: string;
  /** A bench peer instead of a sidecar (`peer:undici-floor`, say), to compare programs. */
  peer?: PeerSpec;
}

/**
 * Peers that can stand on one side: the Node reverse proxies of the bench, and
 * the sidecar with and without a rate limit on its app route (what a limit costs),
 * and with the access log off and on (what the log costs).
 */
const COMPARABLE = ['undici-floor', 'undici-ceiling', 'fastify-http-proxy', 'http-proxy', 'sidecar-unlimited', 'sidecar-ratelimit', 'sidecar-nolog', 'sidecar-log'];

function side(label: 'A' | 'B', spec: string, tmp: string, tracing: string | undefined): Side {
  const ratio = tracing === undefined ? undefined : Number(tracing);
  if (ratio !== undefined && !(ratio >= 0 && ratio <= 1)) throw new Error(`--${label.toLowerCase()}-tracing ${tracing}: a sampleRatio from 0 to 1`);
  if (!spec.startsWith('peer:')) return { label, root: checkout(spec, label, tmp), tracing: ratio };
  const name = spec.slice('peer:'.length);
  const peer = ALL_PEERS.find((p) => p.name === name);
  if (!peer || !COMPARABLE.includes(name)) throw new Error(`--${label.toLowerCase()} ${spec}: known peers are ${COMPARABLE.map((n) => `peer:${n}`).join(', ')}`);
  return { label, peer };
}

/** Worktrees made by this run, removed from git before the temp dir goes. */
const worktrees: string[] = [];

/** The checkout that runs revision `rev`: this one for `.`, else a fresh worktree under `tmp`. */
function checkout(rev: string, label: string, tmp: string): string {
  if (rev === '.') return ROOT;
  const known = spawnSync('git', ['rev-parse', '--verify', '--quiet', `${rev}^{commit}`], { cwd: ROOT, stdio: 'ignore' });
  if (known.status !== 0) throw new Error(`--${label.toLowerCase()} ${rev}: not a git revision here`);
  const dir = join(tmp, `rev-${label}`);
  execFileSync('git', ['worktree', 'add', '--detach', dir, rev], { cwd: ROOT, stdio: 'ignore' });
  worktrees.push(dir);
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

function removeTemp(tmp: string): void {
  for (const dir of worktrees) spawnSync('git', ['worktree', 'remove', '--force', dir], { cwd: ROOT, stdio: 'ignore' });
  rmSync(tmp, { recursive: true, force: true });
}

/** One round: both sidecars fresh, warmed up together, then measured together. */
async function round(index: number, sides: readonly Side[], env: Env, load: LoadContext, options: { path: string; seconds: number; connections: number }): Promise<Map<string, Measurement>> {
  const order = index % 2 === 0 ? sides : [...sides].reverse();
  const peers: Peer[] = [];
  try {
    for (const side of order) {
      peers.push(side.peer ? await side.peer.start(env) : await launchSidecar(env, `sidecar-${side.label}-${index}`, { access: true, root: side.root, tracing: side.tracing }));
    }
    const runAll = (seconds: number) =>
      Promise.all(peers.map((peer) => runHttp({ port: peer.ingress as number, target: options.path, connections: options.connections, seconds }, load, { proxy: peer.proc?.pid })));
    await runAll(2);
    const measured = await runAll(options.seconds);
    return new Map(order.map((side, i) => [side.label, measured[i]]));
  } finally {
    for (const peer of peers) if (peer.proc) await stop(peer.proc);
  }
}

function fixed(value: number | undefined, digits = 1): string {
  return value === undefined ? '-' : value.toFixed(digits);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      a: { type: 'string', default: 'HEAD' },
      b: { type: 'string', default: '.' },
      rounds: { type: 'string', default: '6' },
      seconds: { type: 'string', default: '6' },
      connections: { type: 'string', default: '50' },
      path: { type: 'string', default: '/' },
      'a-tracing': { type: 'string' },
      'b-tracing': { type: 'string' },
    },
  });
  const rounds = Number(values.rounds);
  const seconds = Number(values.seconds);
  const connections = Number(values.connections);
  if (![rounds, seconds, connections].every((n) => Number.isInteger(n) && n > 0 && n <= 1000)) {
    log('bench:ab: --rounds, --seconds and --connections take whole numbers from 1 to 1000');
    return 2;
  }
  installCleanup();
  const tools = ensureTools(true, log);
  if (!tools.wrk.path) throw new Error(`bench:ab needs wrk, which ${tools.wrk.missing}`);
  if (os.availableParallelism() < 2 || !hasTaskset()) throw new Error('bench:ab needs 2 CPUs and taskset: both sidecars share CPU 0, the load runs on CPU 1');
  spawnSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });

  const tmp = mkdtempSync(join(os.tmpdir(), 'sidecar-ab-'));
  onExit(() => removeTemp(tmp));
  try {
    const sides: Side[] = [side('A', values.a, tmp, values['a-tracing']), side('B', values.b, tmp, values['b-tracing'])];
    const upstreamPort = await freePort();
    const upstream = start('upstream', NODE, [join(ROOT, 'bench/servers/upstream.ts'), String(upstreamPort)], join(tmp, 'upstream.log'), { cpu: '1' });
    const down = await waitHttp(upstreamPort, '/', upstream, 10_000, 200);
    if (down) throw new Error(`the upstream did not start: ${down}`);
    // The egress route of the generated config names a TCP source; nothing here uses it.
    let otlpPort: number | undefined;
    if (sides.some((each) => each.tracing !== undefined)) {
      otlpPort = await freePort();
      const sink = start('otlp-sink', NODE, [join(ROOT, 'bench/servers/otlp-sink.ts'), String(otlpPort)], join(tmp, 'otlp-sink.log'), { cpu: '1' });
      const sinkDown = await waitHttp(otlpPort, '/', sink, 10_000, 200);
      if (sinkDown) throw new Error(`the OTLP sink did not start: ${sinkDown}`);
    }
    const env: Env = { tmp, www: makeDocumentRoot(tmp), upstreamPort, nodeUpstreamPort: upstreamPort, tcpSourcePort: await freePort(), tools, cpu: '0', readyMs: 20_000, otlpPort };
    const load: LoadContext = { loader: 'wrk', wrkPath: tools.wrk.path, tmpDir: tmp, cpu: '1' };

    const traced = (ratio: string | undefined) => (ratio === undefined ? '' : ` (tracing, sampleRatio ${ratio})`);
    log(`bench:ab: A = ${values.a}${traced(values['a-tracing'])}, B = ${values.b === '.' ? 'the working tree' : values.b}${traced(values['b-tracing'])}; ${rounds} round(s) of ${seconds}s, GET ${values.path}, ${connections} connections each`);
    process.stdout.write('round   A cpu/req   B cpu/req    B/A   A req/s   B req/s\n');
    const ratios: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const result = await round(i, sides, env, load, { path: values.path, seconds, connections });
      const a = result.get('A');
      const b = result.get('B');
      const ratio = a?.cpuUs && b?.cpuUs ? b.cpuUs / a.cpuUs : undefined;
      if (ratio !== undefined) ratios.push(ratio);
      const errors = (a?.errors ?? 0) + (b?.errors ?? 0);
      process.stdout.write(
        `${String(i + 1).padStart(5)}  ${fixed(a?.cpuUs).padStart(8)}us  ${fixed(b?.cpuUs).padStart(8)}us  ${fixed(ratio, 3).padStart(5)}  ${fixed(a?.rps, 0).padStart(8)}  ${fixed(b?.rps, 0).padStart(8)}${errors ? `  (${errors} errors)` : ''}\n`,
      );
    }
    const sorted = [...ratios].sort((x, y) => x - y);
    process.stdout.write(
      `\nB/A CPU per request: median ${fixed(median(ratios), 3)}, range ${fixed(sorted[0], 3)}-${fixed(sorted.at(-1), 3)} over ${ratios.length} round(s)` +
        ' (below 1: B is cheaper; an A/A run of the same code shows the noise)\n',
    );
    return 0;
  } finally {
    await stopAll();
  }
}

runMain('bench:ab', main);

/**
 * Measures the memory the Kubernetes example asks for (docker/kubernetes/):
 * the sidecar as the image runs it (the ENTRYPOINT's Node flags, a compile
 * cache warmed first, the Deployment's NODE_OPTIONS, the ConfigMap's config
 * with its listeners moved to free loopback ports), RSS at ready, then the
 * peak RSS and V8 heap under load. Usage:
 *   node bench/k8s-rss.ts [--seconds 20]
 * Everything runs on 127.0.0.1 and stops by itself.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configOnLoopback, dockerfileFacts, envOf, podSpec, readExample, sidecarConfigText, sidecarContainer } from '../test/helpers/kubernetes.ts';
import { freePort, waitHttp } from './lib/net.ts';
import { start, stopAll, type Proc } from './lib/procs.ts';

const ROOT = join(import.meta.dirname, '..');
const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1]) || 20;
const MB = 1e6;

function status(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

async function heapUsed(adminPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  return Number(/^sidecar_nodejs_heap_size_used_bytes (\S+)/m.exec(text)?.[1] ?? 0);
}

interface Phase {
  name: string;
  /** What bench/clients/autocannon.ts takes. */
  load: { url: string; connections: number; seconds: number; path?: string; host?: string };
}

/** One load run by autocannon in its own process (bench/clients/autocannon.ts). */
function runLoad(load: Phase['load']): Promise<{ rps: number; errors: number }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [join(ROOT, 'bench/clients/autocannon.ts'), JSON.stringify(load)], { timeout: (load.seconds + 30) * 1000 }, (err, stdout) => {
      if (err) reject(err);
      else resolve(JSON.parse(stdout) as { rps: number; errors: number });
    });
  });
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'k8s-rss-'));
  const { objects } = readExample();
  const sidecar = sidecarContainer(podSpec(objects));
  const image = dockerfileFacts();
  const [ingress, egress, admin, upstream] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const config = configOnLoopback(sidecarConfigText(objects), { ingress, egress, admin, app: upstream });
  const file = join(dir, 'sidecar.yaml');
  writeFileSync(file, config);

  const [node, ...flags] = image.entrypoint;
  if (node !== 'node') throw new Error(`unexpected ENTRYPOINT ${image.entrypoint.join(' ')}`);
  const nodeFlags = flags.filter((flag) => flag.startsWith('--'));
  const env = { ...process.env, NODE_COMPILE_CACHE: join(dir, 'cache'), NODE_OPTIONS: envOf(sidecar, 'NODE_OPTIONS') ?? '' };
  const cli = join(ROOT, 'src/cli.ts');
  // The image's warm-up, then the start it speeds up.
  await new Promise((resolve) => spawn(process.execPath, [cli, 'check', '--config', file], { env, stdio: 'ignore' }).on('exit', resolve));

  const up: Proc = start('upstream', process.execPath, [join(ROOT, 'bench/servers/upstream.ts'), String(upstream)], join(dir, 'upstream.log'));
  const proc = start('sidecar', process.execPath, [...nodeFlags, cli, '--config', file], join(dir, 'sidecar.log'), { env, stdoutFile: '/dev/null' });
  try {
    const failed = (await waitHttp(upstream, '/', up, 10_000)) ?? (await waitHttp(admin, '/readyz', proc, 15_000, 200));
    if (failed) throw new Error(failed);
    await new Promise((r) => setTimeout(r, 1_000));
    const ready = status(proc.pid, 'VmRSS');
    console.log(`flags: ${nodeFlags.join(' ')} NODE_OPTIONS=${env.NODE_OPTIONS}`);
    console.log(`RSS at ready: ${(ready / MB).toFixed(1)} MB`);

    const base = `http://127.0.0.1:${ingress}`;
    const phases: Phase[] = [
      { name: 'ingress, small responses, 50 connections', load: { url: `${base}/`, connections: 50, seconds } },
      { name: 'ingress, small responses, 500 connections', load: { url: `${base}/`, connections: 500, seconds } },
      { name: 'ingress, 1 MiB responses, 10 connections', load: { url: `${base}/1mib`, connections: 10, seconds } },
      {
        name: 'egress, absolute-form to an upstream, 50 connections',
        load: { url: `http://127.0.0.1:${egress}`, connections: 50, seconds, path: 'http://payments.internal/', host: 'payments.internal' },
      },
    ];
    let peakHeap = 0;
    for (const phase of phases) {
      let peak = 0;
      const sampler = setInterval(() => {
        peak = Math.max(peak, status(proc.pid, 'VmRSS'));
        heapUsed(admin).then((used) => (peakHeap = Math.max(peakHeap, used)), () => undefined);
      }, 250);
      const result = await runLoad(phase.load);
      clearInterval(sampler);
      console.log(`${phase.name}: ${Math.round(result.rps)} req/s, ${result.errors} failed, peak RSS ${(peak / MB).toFixed(1)} MB`);
    }
    console.log(`peak RSS over the run (VmHWM): ${(status(proc.pid, 'VmHWM') / MB).toFixed(1)} MB; peak V8 heap used: ${(peakHeap / MB).toFixed(1)} MB`);
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();

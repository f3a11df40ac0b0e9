/**
 * A dead stdout never hangs the shutdown (issue 23). The sidecar's stdout is
 * a real pipe to a reader process (`npm start | head`, a log shipper). When
 * the reader is killed every write fails with EPIPE: the sidecar must keep
 * serving, say once on stderr that logging is off, and still exit 0 on
 * SIGTERM. Before the fix the final flush retried EPIPE forever in a
 * synchronous loop (sonic-boom's flushSync), and no signal could end it. A
 * reader that stalls costs the lines it did not take, not the exit (before
 * the fix: no exit either); a live reader still gets every line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, ROOT, writeConfig } from './helpers/process.ts';
import { closedPort, startHttpServer } from './helpers/servers.ts';
import { processGone } from './helpers/lifecycle.ts';
import { waitFor } from './helpers/reload.ts';

const cleanup: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function status(url: string): Promise<number> {
  try {
    const response = await request(url);
    await response.body.text();
    return response.statusCode;
  } catch {
    return 0;
  }
}

/**
 * The sidecar with its stdout on a pipe to a reader process running `readerCode`
 * (stdin is the pipe; its stdout is ours). Resolves once the admin port says ready.
 */
async function startPiped(readerCode: string) {
  const upstream = await startHttpServer((_req, res) => res.end('hello'));
  cleanup.push(() => upstream.close());
  const [ingress, admin] = [await closedPort(), await closedPort()];
  const config = writeConfig(`
admin: { listen: 127.0.0.1:${admin} }
log: { level: info, access: true }
drainTimeout: 1s
upstreams: { app: { endpoints: [${upstream.url}] } }
ingress:
  listen: 127.0.0.1:${ingress}
  routes: [{ match: { path: / }, upstream: app }]
`);
  const reader = spawn(process.execPath, ['-e', readerCode], { stdio: ['pipe', 'pipe', 'ignore'] });
  cleanup.push(() => void reader.kill('SIGKILL'));
  let readerOut = '';
  reader.stdout!.on('data', (chunk: Buffer) => (readerOut += chunk.toString()));
  const sidecar = spawn(process.execPath, [CLI, '--config', config], { cwd: ROOT, stdio: ['ignore', reader.stdin!, 'pipe'] });
  // Only the two processes hold the pipe's ends now: the reader the read end, the sidecar the write end.
  reader.stdin!.destroy();
  let stderr = '';
  sidecar.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => sidecar.once('exit', (code) => resolve(code)));
  cleanup.push(() => void sidecar.kill('SIGKILL'));
  await waitFor('the sidecar to be ready', async () => ((await status(`http://127.0.0.1:${admin}/readyz`)) === 200 ? true : undefined), 15_000, 50);
  return { reader, sidecar, exited, ingress, stderr: () => stderr, readerOut: () => readerOut };
}

/** SIGTERM; the exit code, or 'still running' after `withinMs`. */
async function terminate(sidecar: ChildProcess, exited: Promise<number | null>, withinMs: number): Promise<{ exited: number | null | string }> {
  sidecar.kill('SIGTERM');
  return Promise.race([
    exited.then((code) => ({ exited: code })),
    new Promise<{ exited: string }>((resolve) => setTimeout(() => resolve({ exited: 'still running' }), withinMs)),
  ]);
}

describe('stdout on a pipe', () => {
  it('a reader that has gone: keeps serving, says once on stderr that logging is off, and exits 0 on SIGTERM', async () => {
    const { reader, sidecar, exited, ingress, stderr } = await startPiped('process.stdin.resume()');
    const readerGone = new Promise((resolve) => reader.once('exit', resolve));
    reader.kill('SIGKILL');
    await readerGone;
    // Every request writes an access line to the dead pipe.
    for (let i = 0; i < 50; i++) expect(await status(`http://127.0.0.1:${ingress}/after-${i}`)).toBe(200);
    await waitFor('stderr to report the failing stdout', () => (/EPIPE/.test(stderr()) ? true : undefined));

    expect(await terminate(sidecar, exited, 10_000)).toEqual({ exited: 0 });
    expect(stderr().match(/logging is off/g)?.length).toBe(1);
    expect(stderr()).toMatch(/stdout is closed \(EPIPE\)/);
    expect(await processGone(sidecar.pid!)).toBe(true);
  });

  it('a reader that stalls (never reads): SIGTERM still exits, the lines it did not take are given up', async () => {
    const { sidecar, exited, ingress, stderr } = await startPiped('process.stdin.pause(); setInterval(() => {}, 60_000)');
    // Enough access lines to fill the pipe's 64 KiB and queue more behind it.
    for (let i = 0; i < 600; i++) expect(await status(`http://127.0.0.1:${ingress}/stalled-${i}-${'x'.repeat(100)}`)).toBe(200);
    // Before the fix the final flush waited for the reader forever.
    expect(await terminate(sidecar, exited, 10_000)).toEqual({ exited: 0 });
    expect(stderr()).toMatch(/stdout did not take the last log lines within 2 s: logging is off/);
  });

  it('a live reader: every line reaches it by the exit', async () => {
    const { sidecar, exited, ingress, readerOut } = await startPiped('process.stdin.pipe(process.stdout)');
    const paths = Array.from({ length: 300 }, (_, i) => `/live-${i}`);
    for (const path of paths) expect(await status(`http://127.0.0.1:${ingress}${path}`)).toBe(200);
    expect(await terminate(sidecar, exited, 10_000)).toEqual({ exited: 0 });
    // The last access lines may follow "stopped": the final flush writes the batch they wait in.
    const lines = await waitFor('the reader to get every line', () => {
      const all = readerOut().trimEnd().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
      return all.filter((line) => line.log === 'access').length >= paths.length ? all : undefined;
    });
    expect(lines.filter((line) => line.log === 'access').map((line) => line.path)).toEqual(paths);
    expect(lines.some((line) => line.msg === 'stopped')).toBe(true);
  });
});

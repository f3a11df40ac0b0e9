/**
 * Issue 24: the Kubernetes example (docker/kubernetes/) deploys as written.
 * Checked offline: the OpenAPI schemas (kubernetes-models), the rules the
 * schemas cannot see (test/helpers/kubernetes-rules.ts), the ConfigMap's config
 * through the real `sidecar check`, and the memory it asks for against the
 * real process started as the image starts it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { configOnLoopback, dockerfileFacts, envOf, memoryBytes, podSpec, readExample, readObjects, sidecarConfigText, sidecarContainer } from './helpers/kubernetes.ts';
import { run } from './helpers/egress.ts';
import { ruleProblems, schemaProblems } from './helpers/kubernetes-rules.ts';
import { CLI, currentRss, peakRss, ROOT, spawnSidecar, type SidecarProcess } from './helpers/process.ts';
import { startHttpServer, type TestServer } from './helpers/servers.ts';

const { kustomization, objects } = readExample();
const BEFORE = join(ROOT, 'test/fixtures/kubernetes-before.yaml');

/** The real CLI (Node 24, the sources) to its end. */
async function runCli(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; output: string }> {
  const { code, stdout, stderr } = await run(process.execPath, [CLI, ...args], env);
  return { code, output: stdout + stderr };
}

describe('docker/kubernetes: the manifests', () => {
  it('are one object per file, listed by the kustomization, each valid against the Kubernetes OpenAPI schemas', () => {
    expect(objects.map((object) => object.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'Service']);
    expect(schemaProblems(objects)).toEqual([]);
  });

  it('keep the rules the schemas cannot see: security, probes, ports, termination, resources, one image reference', () => {
    expect(ruleProblems(objects, kustomization.images)).toEqual([]);
  });

  it("carry a config that passes the real `sidecar check`", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'k8s-check-'));
    try {
      const file = join(dir, 'sidecar.yaml');
      writeFileSync(file, sidecarConfigText(objects));
      const { code, output } = await runCli(['check', '--config', file]);
      expect(output).toContain(': ok (sha256 ');
      expect(code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rules that find what the previous docker/kubernetes.yaml got wrong', () => {
    const before = readObjects([BEFORE]);
    const problems = ruleProblems(before).join('\n');
    for (const expected of [
      'container sidecar: runAsUser is not a numeric non-root uid',
      'container sidecar: capabilities do not drop ALL',
      'container sidecar: seccompProfile is not RuntimeDefault',
      'container app: runAsNonRoot is not true',
      'container app: readOnlyRootFilesystem is not true',
      'the sidecar has no emptyDir at /tmp',
      'targetPort "http" is not a port name of a regular container',
      "the sidecar's memory request (64Mi) is below its measured RSS at ready",
      'NODE_OPTIONS sets no --max-old-space-size',
      'container app has no preStop sleep',
      'image "sidecar:latest" carries a tag or digest',
    ]) {
      expect(problems).toContain(expected);
    }
  });
});

describe('docker/kubernetes: the sidecar in the memory the Deployment gives it', () => {
  let dir: string | undefined;
  let app: TestServer | undefined;
  let sidecar: SidecarProcess | undefined;
  afterEach(async () => {
    await sidecar?.stop();
    await app?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('starts below its memory request and stays below its limit under load, run as the image runs it', { timeout: 60_000 }, async () => {
    dir = mkdtempSync(join(tmpdir(), 'k8s-rss-'));
    app = await startHttpServer((_req, res) => res.end('hello'));
    const container = sidecarContainer(podSpec(objects));
    const file = join(dir, 'sidecar.yaml');
    writeFileSync(file, configOnLoopback(sidecarConfigText(objects), { ingress: 0, egress: 0, admin: 0, app: app.port }));
    const env = { ...process.env, NODE_COMPILE_CACHE: join(dir, 'cache'), NODE_OPTIONS: envOf(container, 'NODE_OPTIONS') ?? '' };
    // The image warms the compile cache at build time, then starts with the ENTRYPOINT's flags.
    expect((await runCli(['check', '--config', file], env)).code).toBe(0);
    const nodeArgs = dockerfileFacts().entrypoint.filter((arg) => arg.startsWith('--'));
    sidecar = await spawnSidecar(['--config', file], { env, nodeArgs });
    const pid = sidecar.child.pid!;
    const atReady = currentRss(pid);
    expect(atReady).toBeGreaterThan(0);
    expect(atReady).toBeLessThan(memoryBytes(container.resources!.requests!.memory)!);

    // Bounded load: 50 clients x 60 requests.
    const pool = new Pool(`http://127.0.0.1:${sidecar.ingressPort}`, { connections: 50 });
    let ok = 0;
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        for (let i = 0; i < 60; i++) {
          const res = await pool.request({ path: '/', method: 'GET' });
          await res.body.text();
          if (res.statusCode === 200) ok++;
        }
      }),
    );
    await pool.close();
    expect(ok).toBe(3000);
    expect(peakRss(pid)).toBeLessThan(memoryBytes(container.resources!.limits!.memory)!);
  });
});

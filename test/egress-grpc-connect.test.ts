/**
 * gRPC through the egress listener (issue 18): grpc-js honours `grpc_proxy`
 * and `http_proxy` by opening a CONNECT tunnel to its target, then speaks
 * cleartext HTTP/2 in it. The tunnel to an allowed destination carries the
 * calls (before, the preface was taken for HTTP/1.1 and the call failed); a
 * destination no route allows is refused at the CONNECT (UNAVAILABLE).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { clientEnv, eventually, NODE, run } from './helpers/egress.ts';
import { startGrpcServer, type TestGrpcServer } from './helpers/grpc.ts';
import { LOGGED_BASE, ROOT, spawnSidecar, writeConfig, type SidecarProcess } from './helpers/process.ts';

const CALLER = join(ROOT, 'test/fixtures/grpc-call.ts');

describe('gRPC through a CONNECT tunnel of the egress listener', () => {
  let service: TestGrpcServer;
  let other: TestGrpcServer;
  let sidecar: SidecarProcess;

  beforeAll(async () => {
    service = await startGrpcServer();
    other = await startGrpcServer();
    sidecar = await spawnSidecar([
      '--config',
      writeConfig(`${LOGGED_BASE}egress:
  listen: 127.0.0.1:0
  routes:
    - { name: grpc-service, match: { host: 127.0.0.1, ports: [${service.port}] } }
`),
    ]);
  });
  afterAll(async () => {
    await sidecar?.stop();
    await service?.close();
    await other?.close();
  });

  const call = (variable: 'grpc_proxy' | 'http_proxy', port: number, text: string, count = 3) =>
    run(NODE, [CALLER, `127.0.0.1:${port}`, text, String(count)], clientEnv({ [variable]: `http://127.0.0.1:${sidecar.egressPort}` }));

  it('grpc_proxy: three calls through one tunnel, answered; the tunnel has its access line', async () => {
    const result = await call('grpc_proxy', service.port, 'via grpc_proxy');
    expect(result.stderr).toBe('');
    expect(result.stdout.trim().split('\n').map((line) => JSON.parse(line) as unknown)).toEqual([
      { text: 'echo: via grpc_proxy 0' },
      { text: 'echo: via grpc_proxy 1' },
      { text: 'echo: via grpc_proxy 2' },
    ]);
    const tunnel = await accessLineOfRoute(sidecar, 'grpc-service');
    expect(tunnel).toMatchObject({ listener: 'egress', method: 'CONNECT', status: 200 });
  });

  it('http_proxy (what the sidecar injects into its app) works the same', async () => {
    const result = await call('http_proxy', service.port, 'via http_proxy', 1);
    expect(JSON.parse(result.stdout.trim())).toEqual({ text: 'echo: via http_proxy 0' });
  });

  it('a destination no route allows: refused at the CONNECT, the call is UNAVAILABLE', async () => {
    const result = await call('grpc_proxy', other.port, 'denied', 1);
    expect(JSON.parse(result.stdout.trim())).toMatchObject({ code: 14 });
  });
});

/** The first access line of an egress route (the tunnel's, written when it closes), waited for (bounded). */
function accessLineOfRoute(sidecar: SidecarProcess, route: string): Promise<Record<string, unknown>> {
  return eventually(() => sidecar.lines.find((line) => line.log === 'access' && line.route === route));
}

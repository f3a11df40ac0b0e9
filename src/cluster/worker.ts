/**
 * A cluster worker: a Sidecar that serves ingress and egress on SO_REUSEPORT
 * listeners and answers its primary's questions (reload, metrics, upstream
 * state). It tells the primary which listeners it bound, and learns from it
 * the admin listener and the other workers' listeners (egress's loop guard).
 * It drains and exits on SIGTERM from the primary; SIGINT (a Ctrl-C sent to
 * the whole process group) is left to the primary to coordinate.
 */
import { compile } from '../config/compile.ts';
import { formatConfigError, loadConfigFile } from '../config/load.ts';
import { Sidecar } from '../sidecar.ts';
import { registry } from '../observe/metrics.ts';
import { flushLogs, log } from '../observe/log.ts';
import { recentErrors } from '../status/recent-errors.ts';
import type { DiscoveredSets, Unhealthy } from '../upstream/registry.ts';
import { DISCOVERED_ENV, isMessage, UNHEALTHY_ENV, type ToPrimary, type ToWorker } from './messages.ts';

function send(message: ToPrimary): void {
  process.send?.(message);
}

/** Runs this process as worker; resolves to an exit code only when it could not start. */
export async function runWorker(configPath: string): Promise<number | undefined> {
  const loaded = await loadConfigFile(configPath);
  if (!loaded.ok) {
    process.stderr.write(`${loaded.errors.map(formatConfigError).join('\n')}\n`);
    return 1;
  }
  let appReady = process.env.SIDECAR_APP_READY === '1';
  const sidecar = new Sidecar(compile(loaded), {
    role: 'worker',
    appReady: () => appReady,
    unhealthy: JSON.parse(process.env[UNHEALTHY_ENV] ?? '[]') as Unhealthy[],
    discovered: JSON.parse(process.env[DISCOVERED_ENV] ?? '{}') as DiscoveredSets,
  });

  const answer = async (message: Extract<ToWorker, { type: 'ask' }>): Promise<unknown> => {
    switch (message.question) {
      case 'reload': {
        const result = await sidecar.reload();
        // Before the reply: the primary then shares the new addresses with the others before it answers the reload.
        send({ type: 'addresses', addresses: sidecar.localAddresses() });
        return result;
      }
      case 'metrics':
        return registry.getMetricsAsJSON();
      case 'upstreams':
        return sidecar.upstreamsView();
      case 'certs':
        return sidecar.certificatesView();
      case 'own-addresses':
        sidecar.setPeerAddresses(message.addresses ?? []);
        return true;
      case 'recent-errors':
        return recentErrors();
    }
  };
  process.on('message', (message: unknown) => {
    if (!isMessage<ToWorker>(message)) return;
    if (message.type === 'app-ready') {
      appReady = message.ready;
      return;
    }
    if (message.type === 'health') {
      sidecar.registry.follow(message.unhealthy);
      return;
    }
    if (message.type === 'discovered') {
      sidecar.registry.followDiscovered(message.sets);
      return;
    }
    answer(message).then(
      (value) => send({ type: 'reply', id: message.id, answer: value }),
      (err: unknown) => send({ type: 'reply', id: message.id, answer: { ok: false, errors: [(err as Error).message] } }),
    );
  });

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await sidecar.stop();
    await flushLogs();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => undefined);
  // The primary is gone (killed): nobody will ever stop us, so drain and go.
  process.on('disconnect', () => void stop());

  try {
    await sidecar.start();
  } catch (err) {
    log.error({ err }, 'worker could not start');
    process.stderr.write(`sidecar worker: ${(err as Error).message}\n`);
    return 1;
  }
  send({ type: 'listening', addresses: sidecar.localAddresses() });
  return undefined;
}

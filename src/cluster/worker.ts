/**
 * A cluster worker: a Sidecar that serves ingress and egress on SO_REUSEPORT
 * listeners and answers its primary's questions (reload, metrics, upstream
 * state). It drains and exits on SIGTERM from the primary; SIGINT (a Ctrl-C
 * sent to the whole process group) is left to the primary to coordinate.
 */
import { compile } from '../config/compile.ts';
import { formatConfigError, loadConfigFile } from '../config/load.ts';
import { Sidecar } from '../sidecar.ts';
import { registry } from '../observe/metrics.ts';
import { flushLogs, log } from '../observe/log.ts';
import { isMessage, type ToPrimary, type ToWorker, type WorkerQuestion } from './messages.ts';

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
  });

  const answer = async (question: WorkerQuestion): Promise<unknown> => {
    switch (question) {
      case 'reload':
        return sidecar.reload();
      case 'metrics':
        return registry.getMetricsAsJSON();
      case 'upstreams':
        return sidecar.upstreamsView();
    }
  };
  process.on('message', (message: unknown) => {
    if (!isMessage<ToWorker>(message)) return;
    if (message.type === 'app-ready') {
      appReady = message.ready;
      return;
    }
    answer(message.question).then(
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
  send({ type: 'listening' });
  return undefined;
}

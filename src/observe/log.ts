/**
 * Logging: one pino root for the process, JSON lines on stdout. When stdout
 * is a pipe (a container runtime, a log shipper), writes go through pino's
 * asynchronous destination so a stalled reader never stalls the proxy's
 * event loop; when it is a regular file or /dev/null, they are written
 * synchronously, as NGINX writes its logs (see `SYNC_STDOUT`). `flushLogs()`
 * drains both at shutdown, waiting a bounded time. A failing stdout (a full
 * disk) drops lines and says so on stderr; a stdout that is gone (its reader
 * exited: EPIPE) turns logging off. Neither ever stops the proxy or blocks
 * its exit. With `--pretty`, or when stdout is a terminal, lines are made
 * readable by pretty.ts instead (a person is reading, not a log shipper):
 * one line per event.
 */
import { fstatSync } from 'node:fs';
import { isatty } from 'node:tty';
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';
import { accessLine, type AccessRecord } from './access-line.ts';
import { LineBatch } from './line-batch.ts';
import { prettyAccessLine, prettyDestination } from './pretty.ts';

export type { Logger };

/** Header values and keys that must never reach a log line. */
const REDACT = {
  paths: [
    'req.headers.authorization',
    'req.headers.cookie',
    'req.headers["proxy-authorization"]',
    'config.egress.auth.password',
    '*.password',
  ],
  censor: '[redacted]',
};

const PRETTY = process.argv.includes('--pretty') || process.stdout.isTTY === true;

/**
 * A regular file (or /dev/null) takes a write at once, so a synchronous
 * write there costs only the syscall, where an asynchronous one also hands
 * the write to libuv's thread pool and back: on a sidecar pinned to one core
 * that hand-off cost about 5% of its CPU with the access log on (profile
 * under wrk, 50 connections). A pipe may block when its reader stalls, so
 * pipes keep the asynchronous destination.
 */
const SYNC_STDOUT = ((): boolean => {
  try {
    const stat = fstatSync(1);
    return stat.isFile() || (stat.isCharacterDevice() && !isatty(1));
  } catch {
    return false;
  }
})();

/** Bytes queued for a stalled stdout before new lines are dropped, so memory stays bounded. */
const MAX_QUEUED = 16 * 1024 * 1024;

/**
 * Largest write. To a pipe 4 KiB: each write stays within PIPE_BUF, so lines
 * of several processes (`workers`) sharing one stdout pipe never interleave
 * mid-line. To a file 64 KiB, NGINX's usual access-log buffer: Linux applies a
 * write() to a regular file whole, whatever its size, so workers sharing the
 * file still never split a line.
 */
const MAX_WRITE = SYNC_STDOUT ? 64 * 1024 : 4096;

type Sonic = ReturnType<typeof pino.destination>;

/** The sonic-boom destinations on stdout, for the final flush. */
const sonics: Sonic[] = [];

/**
 * Errors after which stdout never takes a line again: its reader has exited
 * (`npm start | head`, a dead log shipper) or it was closed. Retrying them
 * cannot help, so logging stops for good.
 */
const GONE = new Set(['EPIPE', 'EBADF']);

function stdoutDestination(): DestinationStream {
  const sonic = pino.destination({ dest: 1, sync: SYNC_STDOUT, maxWrite: MAX_WRITE, maxLength: MAX_QUEUED });
  sonics.push(sonic);
  sonic.on('error', (err: NodeJS.ErrnoException) => {
    failing.add(sonic);
    if (GONE.has(err.code ?? '')) loggingOff(`stdout is closed (${err.code})`);
    else reportLost(`log write failed (${err.code ?? err.message}); lines are dropped until stdout accepts them again`);
  });
  sonic.on('write', () => failing.delete(sonic));
  sonic.on('drop', () => reportLost(`stdout is not keeping up: over ${MAX_QUEUED / 1024 / 1024} MiB of log lines queued, new lines are dropped`));
  return sonic;
}

/**
 * Destinations whose last write failed. sonic-boom's flushSync() retries a
 * failed write (ENOSPC, EIO) forever, so the final flush skips them: a
 * sidecar on a full disk still exits when asked.
 */
const failing = new Set<DestinationStream>();

let lastLostReport = 0;

/** Says on stderr, at most every 10 s, that log lines are being lost. */
function reportLost(message: string): void {
  const now = Date.now();
  if (now - lastLostReport < 10_000) return;
  lastLostReport = now;
  toStderr(message);
}

function toStderr(message: string): void {
  // A stderr that is gone too must not become an uncaught exception on every line.
  if (process.stderr.listenerCount('error') === 0) process.stderr.on('error', () => undefined);
  process.stderr.write(`sidecar: ${message}\n`);
}

/** Colours only for a terminal: `--pretty` into a file or a pipe stays plain text. */
const COLORS = process.stdout.isTTY === true;

/** Set once stdout is gone (or would not drain at exit): nothing is written to it any more. */
let loggingIsOff = false;

/**
 * Stops every write to stdout for the rest of the process, and says why once
 * on stderr. The destinations are destroyed with what they still hold, so no
 * flush (ours, or pino's own at process exit) ever retries a write that
 * cannot succeed: sonic-boom's flushSync() retries a failed write forever.
 */
function loggingOff(why: string): void {
  if (loggingIsOff) return;
  loggingIsOff = true;
  log.level = 'silent';
  accessOn = false;
  for (const sonic of sonics) {
    failing.add(sonic);
    try {
      sonic.destroy();
    } catch {
      // pino has already made a broken pipe's destroy() a no-op (and its writes and flushSync()).
    }
  }
  toStderr(`${why}: logging is off`);
}

const stdoutSink = stdoutDestination();

/** With --pretty, the logger's lines pass through pretty.ts on their way to stdout. */
const destination: DestinationStream = PRETTY ? prettyDestination(stdoutSink, COLORS) : stdoutSink;

/**
 * Access lines are many: they are written in chunks of up to MAX_WRITE, or
 * every 200 ms when traffic is light. One write per chunk instead of one per
 * line gave 5-8% more requests per second with the access log on (wrk, 50
 * connections, one route, medians of 3 runs); to a file, batches of 128 lines
 * in 64 KiB writes instead of 16 in 4 KiB saved about 4 us more per request
 * (70.8 -> 66.3 us of CPU, medians of 4 alternating runs). Other log lines are
 * not delayed.
 */
const accessDestination = PRETTY ? stdoutSink : stdoutDestination();
/** With --pretty, access lines are made readable straight from their records, not parsed back from JSON. */
const formatAccess = PRETTY ? (record: AccessRecord) => prettyAccessLine(record, COLORS) : accessLine;
/** Once logging is off, lines still batched go nowhere (a destroyed destination throws on write). */
const accessSink = { write: (chunk: string) => loggingIsOff || accessDestination.write(chunk) };
const accessBatch = new LineBatch<AccessRecord>(accessSink, formatAccess, {
  maxBytes: MAX_WRITE,
  maxRecords: SYNC_STDOUT ? 128 : 16,
  flushMs: 200,
});

/** The process-wide logger; its level follows `log.level` of the live config. */
export const log: Logger = pino(
  {
    level: 'info',
    base: { pid: process.pid },
    redact: REDACT,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  },
  destination,
);

/** False when `log.level` is `silent`: the access log has its own switch (`log.access`), but silent means silent. */
let accessOn = true;

/** Queues one access line (access-line.ts formats it: the JSON of a pino line, told apart by `log: "access"`). */
export function logAccess(record: AccessRecord): void {
  if (accessOn) accessBatch.push(record);
}

export function setLogLevel(level: LevelWithSilent): void {
  if (loggingIsOff) return;
  log.level = level;
  accessOn = level !== 'silent';
}

/** How long the final flush waits for a pipe to take what is queued. */
const FLUSH_WITHIN_MS = 2_000;

/**
 * Writes what is buffered; called once at exit. A pipe gets up to
 * FLUSH_WITHIN_MS to take it; a reader that is gone or stalled costs the
 * lines still queued, never the exit.
 */
export async function flushLogs(): Promise<void> {
  accessBatch.flush();
  await Promise.all(sonics.map((sonic) => (SYNC_STDOUT ? undefined : written(sonic))));
  if (sonics.some((sonic) => !SYNC_STDOUT && writing(sonic))) {
    loggingOff(`stdout did not take the last log lines within ${FLUSH_WITHIN_MS / 1000} s`);
  }
  for (const sink of new Set([accessDestination, stdoutSink])) {
    if (failing.has(sink)) continue;
    try {
      (sink as { flushSync?: () => void }).flushSync?.();
    } catch {
      // The destination may not be ready yet (nothing written): nothing to flush.
    }
  }
}

/**
 * Whether an asynchronous destination has a write in flight (lines queued
 * behind it included). sonic-boom (4.x, pinned through pino) has no public
 * way to say so; `_writing` stays true until all is written ('drain') or a
 * write failed ('error').
 */
function writing(sonic: Sonic): boolean {
  const state = sonic as unknown as { _writing?: boolean; destroyed?: boolean };
  return state._writing === true && state.destroyed !== true;
}

/** Resolves once `sonic` has written all it holds, a write failed, or FLUSH_WITHIN_MS passed. */
function written(sonic: Sonic): Promise<void> {
  if (!writing(sonic)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      sonic.off('drain', done);
      sonic.off('error', done);
      resolve();
    };
    const timer = setTimeout(done, FLUSH_WITHIN_MS);
    sonic.once('drain', done);
    sonic.once('error', done);
  });
}

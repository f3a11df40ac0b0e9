/**
 * Headless Chromium (Debian's /usr/bin/chromium) driven over the DevTools
 * protocol with Node's own WebSocket: no browser download, no driver
 * library. Enough for a test to open a page, read its rendered text and take
 * a screenshot.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const START_TIMEOUT_MS = 30_000;
const COMMAND_TIMEOUT_MS = 30_000;

type Message = { id?: number; method?: string; params?: Record<string, unknown>; result?: Record<string, unknown>; error?: { message: string }; sessionId?: string };

/** One page (a target attached in flat mode) of a running browser. */
export interface Page {
  /** Navigates and waits for the load event. */
  open(url: string): Promise<void>;
  /** The value of a JavaScript expression in the page. */
  evaluate<T>(expression: string): Promise<T>;
  /** Polls `expression` until it is truthy (bounded in time); returns whether it became so. */
  waitFor(expression: string, timeoutMs: number): Promise<boolean>;
  /** A PNG of the page at `width` CSS pixels: the whole of it, or its top `height` pixels. */
  screenshot(width: number, height?: number): Promise<Buffer>;
}

export interface Browser {
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

export async function launchChromium(): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'sidecar-chromium-'));
  const child = spawn(
    CHROMIUM,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
      '--hide-scrollbars',
      '--remote-debugging-port=0',
      `--user-data-dir=${profile}`,
      'about:blank',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  try {
    const endpoint = await devtoolsEndpoint(child);
    const connection = await Connection.open(endpoint);
    return {
      newPage: async () => {
        const { targetId } = (await connection.send('Target.createTarget', { url: 'about:blank' })) as { targetId: string };
        const { sessionId } = (await connection.send('Target.attachToTarget', { targetId, flatten: true })) as { sessionId: string };
        return pageOf(connection, sessionId);
      },
      close: async () => {
        connection.close();
        await stop(child);
        rmSync(profile, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await stop(child);
    rmSync(profile, { recursive: true, force: true });
    throw err;
  }
}

/** The browser prints its DevTools WebSocket address on stderr once it listens. */
function devtoolsEndpoint(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`chromium did not start within ${START_TIMEOUT_MS} ms:\n${seen}`)), START_TIMEOUT_MS);
    child.stderr!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      const match = /DevTools listening on (ws:\/\/\S+)/.exec(seen);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`chromium exited with code ${code}:\n${seen}`));
    });
  });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

class Connection {
  readonly #socket: WebSocket;
  readonly #pending = new Map<number, { resolve: (value: Record<string, unknown>) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
  readonly #waiters: Array<{ method: string; sessionId: string | undefined; resolve: () => void }> = [];
  #nextId = 1;

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.addEventListener('message', (event) => this.#receive(JSON.parse(String(event.data)) as Message));
  }

  static open(url: string): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url);
      socket.addEventListener('open', () => resolve(new Connection(socket)), { once: true });
      socket.addEventListener('error', () => reject(new Error(`cannot reach the DevTools endpoint ${url}`)), { once: true });
    });
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`DevTools ${method} got no answer within ${COMMAND_TIMEOUT_MS} ms`));
      }, COMMAND_TIMEOUT_MS);
      this.#pending.set(id, { resolve, reject, timer });
      this.#socket.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });
  }

  /** Resolves on the next event `method` of `sessionId`. */
  next(method: string, sessionId: string | undefined): Promise<void> {
    return new Promise((resolve) => this.#waiters.push({ method, sessionId, resolve }));
  }

  #receive(message: Message): void {
    if (message.id !== undefined) {
      const pending = this.#pending.get(message.id);
      if (!pending) return;
      this.#pending.delete(message.id);
      clearTimeout(pending.timer);
      if (message.error) pending.reject(new Error(message.error.message));
      else pending.resolve(message.result ?? {});
      return;
    }
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      const waiter = this.#waiters[i];
      if (waiter.method === message.method && waiter.sessionId === message.sessionId) {
        this.#waiters.splice(i, 1);
        waiter.resolve();
      }
    }
  }

  close(): void {
    for (const pending of this.#pending.values()) clearTimeout(pending.timer);
    this.#socket.close();
  }
}

async function pageOf(connection: Connection, sessionId: string): Promise<Page> {
  const send = (method: string, params?: Record<string, unknown>) => connection.send(method, params, sessionId);
  await send('Page.enable');
  await send('Runtime.enable');
  const evaluate = async <T>(expression: string): Promise<T> => {
    const answer = (await send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true })) as {
      result: { value?: T };
      exceptionDetails?: { text: string };
    };
    if (answer.exceptionDetails) throw new Error(`page script failed: ${answer.exceptionDetails.text}`);
    return answer.result.value as T;
  };
  return {
    open: async (url) => {
      const loaded = connection.next('Page.loadEventFired', sessionId);
      const { errorText } = (await send('Page.navigate', { url })) as { errorText?: string };
      if (errorText) throw new Error(`navigating to ${url} failed: ${errorText}`);
      await Promise.race([loaded, new Promise((_, reject) => setTimeout(() => reject(new Error(`${url} did not load`)), COMMAND_TIMEOUT_MS).unref())]);
    },
    evaluate,
    waitFor: async (expression, timeoutMs) => {
      const until = Date.now() + timeoutMs;
      for (let round = 0; round < 1_000 && Date.now() < until; round++) {
        if (await evaluate<boolean>(`Boolean(${expression})`)) return true;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return false;
    },
    screenshot: async (width, top) => {
      await send('Emulation.setDeviceMetricsOverride', { width, height: 800, deviceScaleFactor: 1, mobile: false });
      const whole = Math.ceil(await evaluate<number>('document.documentElement.scrollHeight'));
      const height = top === undefined ? whole : Math.min(top, whole);
      await send('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile: false });
      const { data } = (await send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: false })) as { data: string };
      return Buffer.from(data, 'base64');
    },
  };
}

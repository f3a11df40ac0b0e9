/**
 * The soak's mix: each kind of exchange is one function that runs it against
 * the sidecar and says how it ended, as a short outcome ("200", "403",
 * "aborted", "ws-ok", or an error code). `EXPECTED` says which outcomes are
 * right for each kind; anything else is counted as an error of that kind.
 */
import { connect } from 'node:net';
import { Agent, ProxyAgent, request } from 'undici';
import WebSocket from 'ws';

/** Where the sidecar listens. */
export interface Ports {
  readonly ingress: number;
  readonly egress: number;
  /** The TCP echo server blind tunnels go to. */
  readonly echo: number;
}

/** Every exchange gives up after this: a hung one is an error, never a hung soak. */
const GIVE_UP_MS = 15_000;

export type Kind = (typeof KINDS)[number];

export const KINDS = [
  'ingress-ok',
  'ingress-big',
  'ingress-upload',
  'ingress-fail',
  'ingress-dead',
  'ingress-reset',
  'ingress-slow',
  'ingress-abort',
  'malformed',
  'headers-too-large',
  'egress-logical',
  'egress-denied',
  'tunnel',
  'websocket',
] as const;

/** Outcomes that are correct for each kind (a dead upstream may also meet an open breaker). */
export const EXPECTED: Record<Kind, readonly string[]> = {
  'ingress-ok': ['200'],
  'ingress-big': ['200'],
  'ingress-upload': ['200'],
  'ingress-fail': ['500'],
  'ingress-dead': ['502', '503'],
  'ingress-reset': ['502'],
  'ingress-slow': ['200'],
  'ingress-abort': ['aborted'],
  malformed: ['400'],
  'headers-too-large': ['431'],
  'egress-logical': ['200'],
  'egress-denied': ['403'],
  tunnel: ['echoed'],
  websocket: ['ws-ok'],
};

const UPLOAD = Buffer.alloc(64 * 1024, 'u');

export class Traffic {
  readonly #ports: Ports;
  readonly #ingress: Agent;
  readonly #egress: ProxyAgent;

  constructor(ports: Ports) {
    this.#ports = ports;
    this.#ingress = new Agent({ connections: 64, keepAliveTimeout: 4_000 });
    this.#egress = new ProxyAgent({ uri: `http://127.0.0.1:${ports.egress}`, connections: 32 });
  }

  run(kind: Kind): Promise<string> {
    const work = this.#run(kind).catch((err: unknown) => errorName(err));
    return withDeadline(work, GIVE_UP_MS);
  }

  #run(kind: Kind): Promise<string> {
    switch (kind) {
      case 'ingress-ok':
        return this.#get('/ok');
      case 'ingress-big':
        return this.#get('/big', 256 * 1024);
      case 'ingress-upload':
        return this.#ingressRequest('POST', '/echo', UPLOAD);
      case 'ingress-fail':
        return this.#get('/fail');
      case 'ingress-dead':
        return this.#get('/dead/x');
      case 'ingress-reset':
        return this.#get('/reset');
      case 'ingress-slow':
        return this.#get('/slow');
      case 'ingress-abort':
        return this.#abortMidBody();
      case 'malformed':
        return this.#raw('GARBAGE / HTTP/9.9\r\n\r\n');
      case 'headers-too-large':
        return this.#raw(`GET /ok HTTP/1.1\r\nhost: soak\r\nx-big: ${'h'.repeat(32 * 1024)}\r\n\r\n`);
      case 'egress-logical':
        return this.#viaEgress('http://soak.internal/ok');
      case 'egress-denied':
        return this.#viaEgress('http://denied.example/');
      case 'tunnel':
        return this.#tunnel();
      case 'websocket':
        return this.#websocket();
    }
  }

  async #get(path: string, expectBytes?: number): Promise<string> {
    return this.#ingressRequest('GET', path, undefined, expectBytes);
  }

  async #ingressRequest(method: string, path: string, body?: Buffer, expectBytes?: number): Promise<string> {
    const res = await request(`http://127.0.0.1:${this.#ports.ingress}${path}`, {
      method,
      body,
      dispatcher: this.#ingress,
      signal: AbortSignal.timeout(GIVE_UP_MS),
    });
    const received = (await res.body.arrayBuffer()).byteLength;
    if (expectBytes !== undefined && res.statusCode === 200 && received !== expectBytes) return `short-body-${received}`;
    return String(res.statusCode);
  }

  /** The client leaves in the middle of a slow body. */
  async #abortMidBody(): Promise<string> {
    const controller = new AbortController();
    const res = await request(`http://127.0.0.1:${this.#ports.ingress}/slow`, { dispatcher: this.#ingress, signal: controller.signal });
    if (res.statusCode !== 200) return String(res.statusCode);
    await new Promise<void>((resolve) => res.body.once('data', () => resolve()));
    controller.abort();
    res.body.on('error', () => undefined);
    return 'aborted';
  }

  /** Bytes straight to the ingress port; the status of whatever comes back. */
  #raw(bytes: string): Promise<string> {
    return new Promise((resolve) => {
      const socket = connect(this.#ports.ingress, '127.0.0.1');
      let answer = '';
      socket.setEncoding('latin1');
      socket.on('data', (text: string) => (answer += text));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 'no-answer'));
      socket.write(bytes);
      socket.setTimeout(GIVE_UP_MS, () => socket.destroy());
    });
  }

  async #viaEgress(url: string): Promise<string> {
    const res = await request(url, { dispatcher: this.#egress, signal: AbortSignal.timeout(GIVE_UP_MS) });
    await res.body.arrayBuffer();
    return String(res.statusCode);
  }

  /** CONNECT to the echo server, 16 KiB there and back, then close. */
  #tunnel(): Promise<string> {
    return new Promise((resolve) => {
      const socket = connect(this.#ports.egress, '127.0.0.1');
      const payload = Buffer.alloc(16 * 1024, 't');
      let head = '';
      let echoed = 0;
      let established = false;
      const finish = (outcome: string) => {
        socket.destroy();
        resolve(outcome);
      };
      socket.on('error', () => finish('tunnel-error'));
      socket.on('close', () => finish(established ? `tunnel-short-${echoed}` : 'tunnel-refused'));
      socket.on('data', (chunk: Buffer) => {
        if (!established) {
          head += chunk.toString('latin1');
          const end = head.indexOf('\r\n\r\n');
          if (end === -1) return;
          if (!head.startsWith('HTTP/1.1 200')) return finish(`connect-${head.slice(9, 12)}`);
          established = true;
          socket.write(payload);
          echoed += Buffer.byteLength(head.slice(end + 4), 'latin1');
        } else {
          echoed += chunk.length;
        }
        if (echoed >= payload.length) finish('echoed');
      });
      socket.write(`CONNECT 127.0.0.1:${this.#ports.echo} HTTP/1.1\r\nhost: 127.0.0.1:${this.#ports.echo}\r\n\r\n`);
    });
  }

  /** A WebSocket through ingress: three messages echoed, then a clean close. */
  #websocket(): Promise<string> {
    return new Promise((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${this.#ports.ingress}/ws`);
      let echoed = 0;
      ws.on('open', () => {
        for (let i = 0; i < 3; i++) ws.send(`message ${i}`);
      });
      ws.on('message', () => {
        if (++echoed === 3) ws.close(1000);
      });
      ws.on('close', () => resolve(echoed === 3 ? 'ws-ok' : `ws-short-${echoed}`));
      ws.on('error', (err) => resolve(`ws-${errorName(err)}`));
    });
  }

  async close(): Promise<void> {
    await Promise.all([this.#ingress.close(), this.#egress.close()]);
  }
}

function errorName(err: unknown): string {
  const { code, name } = (err ?? {}) as { code?: string; name?: string };
  return code ?? name ?? 'error';
}

function withDeadline(work: Promise<string>, ms: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve('gave-up'), ms + 1_000);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

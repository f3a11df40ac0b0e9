/**
 * Defences of one HTTP/2 client connection against the abuses that cost a
 * server work without costing the client much:
 *
 * - rapid reset (CVE-2023-44487): HEADERS then RST_STREAM, over and over;
 *   each stream starts a request (routing, an upstream try) that the reset
 *   throws away, and MAX_CONCURRENT_STREAMS never bites since the streams
 *   close at once. As Envoy does, a connection whose client reset more than
 *   half of the streams it opened, once it has reset `maxResets`, is ended.
 *   A stream whose HEADERS and RST_STREAM arrive in one read never reaches
 *   JavaScript (nghttp2 closes it first) and costs next to nothing; those are
 *   limited by nghttp2 itself (sessions.ts sets its rate limit from
 *   `maxResets`), which answers a burst with its own GOAWAY (INTERNAL_ERROR).
 *   The resets this guard sees are of streams that did start a request.
 * - SETTINGS and PING floods: each frame is answered with an ACK. More than
 *   `maxControlFrames` of them in any 10 s window ends the connection (a
 *   client sends a few SETTINGS and, with gRPC keepalive, a PING now and then).
 * - a connection that never sends its preface (the client's SETTINGS) within
 *   the listener's `headersTimeout` is ended too.
 *
 * Ending is a GOAWAY with ENHANCE_YOUR_CALM, then the connection closes; it
 * counts in `sidecar_h2_goaways_total{listener,reason}` and is logged once.
 * nghttp2's own rapid-reset limit stays behind ours: sessions.ts sets it from
 * `maxResets` (a burst of twice that, refilled at a tenth of it per second)
 * when the listener starts, so a reload does not change it.
 */
import { constants, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { ListenerName } from '../config/compile.ts';
import { log } from '../observe/log.ts';
import { h2GoawaysTotal } from '../observe/metrics.ts';

export interface GuardLimits {
  readonly maxResets: number;
  readonly maxControlFrames: number;
  /** Time allowed for the client's preface (ms). */
  readonly prefaceTimeout: number;
}

export type AbuseReason = 'rapid_reset' | 'settings_flood' | 'ping_flood' | 'preface_timeout';

/** The window control frames are counted in. */
const CONTROL_WINDOW_MS = 10_000;

export class SessionGuard {
  readonly #session: ServerHttp2Session;
  readonly #listener: ListenerName;
  readonly #limits: GuardLimits;
  readonly #peer: { readonly address: string | undefined; readonly port: number | undefined };
  #streams = 0;
  #resets = 0;
  #windowStart = 0;
  #controlFrames = 0;
  #preface: NodeJS.Timeout | undefined;
  #ended = false;

  constructor(session: ServerHttp2Session, listener: ListenerName, limits: GuardLimits, peer: { address: string | undefined; port: number | undefined }) {
    this.#session = session;
    this.#listener = listener;
    this.#limits = limits;
    this.#peer = peer;
    if (limits.prefaceTimeout > 0) this.#preface = setTimeout(() => this.#abuse('preface_timeout'), limits.prefaceTimeout).unref();
    session.on('remoteSettings', () => {
      clearTimeout(this.#preface);
      this.#control('settings_flood');
    });
    session.on('ping', () => this.#control('ping_flood'));
    session.once('close', () => clearTimeout(this.#preface));
  }

  /** A new stream of the client: counted, and watched for a reset before its answer ended. */
  stream(stream: ServerHttp2Stream): void {
    this.#streams++;
    stream.once('aborted', () => {
      this.#resets++;
      if (this.#resets >= this.#limits.maxResets && this.#resets * 2 > this.#streams) this.#abuse('rapid_reset');
    });
  }

  #control(reason: 'settings_flood' | 'ping_flood'): void {
    const now = performance.now();
    if (now - this.#windowStart > CONTROL_WINDOW_MS) {
      this.#windowStart = now;
      this.#controlFrames = 0;
    }
    if (++this.#controlFrames > this.#limits.maxControlFrames) this.#abuse(reason);
  }

  #abuse(reason: AbuseReason): void {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#preface);
    h2GoawaysTotal.inc({ listener: this.#listener, reason });
    log.warn(
      { listener: this.#listener, reason, clientAddress: this.#peer.address, clientPort: this.#peer.port, streams: this.#streams, resets: this.#resets },
      'HTTP/2 client connection ended with GOAWAY (ENHANCE_YOUR_CALM)',
    );
    const session = this.#session;
    if (session.destroyed) return;
    // The GOAWAY is written with the session's next output; destroy() at once would drop it. Streams
    // the client opens after it are refused by nghttp2; the connection goes on the next turn.
    session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM);
    setImmediate(() => session.destroy());
  }
}

/**
 * The admin port (loopback by default): the status page, health, readiness,
 * Prometheus metrics, the live config, upstream state and reload. It reads state; it
 * never sits on a proxied request's path. What it shows of the config is
 * redacted (config/secrets.ts); what changes state is guarded (guard.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ConfigStore } from '../config/store.ts';
import type { UpstreamRegistry } from '../upstream/registry.ts';
import { Listener } from '../net/listener.ts';
import { registry as metrics } from '../observe/metrics.ts';
import { log } from '../observe/log.ts';
import { tokenRefusal, writeRefusal, type Refusal } from './guard.ts';
import type { StatusBoard } from '../status/board.ts';
import { renderStatusPage } from '../status/page.ts';
import { CONTENT_SECURITY_POLICY, STATUS_SCRIPT, STATUS_STYLE } from '../status/assets.ts';

export interface ReloadResult {
  readonly ok: boolean;
  readonly hash?: string;
  readonly errors?: readonly string[];
}

export interface AdminDeps {
  readonly store: ConfigStore;
  readonly registry: UpstreamRegistry;
  /** True once listeners are bound and the app (if any) is ready, false while draining. */
  readonly ready: () => boolean;
  /** Reloads the config file now. */
  readonly reload: () => Promise<ReloadResult>;
  /** Per-upstream view for GET /upstreams. */
  readonly upstreamsView: () => unknown;
  /** Every loaded certificate for GET /certs (never a key). */
  readonly certsView: () => unknown;
  /** Prometheus text; by default this process's registry (a cluster primary adds its workers'). */
  readonly metricsText?: () => Promise<string>;
  /** The status page's data (GET / and /status.json). */
  readonly status: StatusBoard;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/** One admin path. A GET handler answers HEAD too. */
interface AdminPath {
  readonly get?: Handler;
  readonly post?: Handler;
  /**
   * Changes state: refused from another origin or under a foreign Host, and
   * needs the token when admin.token is set.
   */
  readonly write?: boolean;
  /** Shows the config or the upstreams: needs the token when admin.token is set (probes and scrapers stay open). */
  readonly private?: boolean;
  /** Opened by a browser (the status page): the token may come as a Basic password too. */
  readonly browser?: boolean;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers });
  res.end(text);
}

/** The headers of the status page and its assets: a strict CSP, no sniffing, no referrer, never cached. */
const PAGE_HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
} as const;

function sendText(res: ServerResponse, type: string, text: string): void {
  res.writeHead(200, { 'content-type': type, 'content-length': Buffer.byteLength(text), ...PAGE_HEADERS });
  res.end(text);
}

function refuse(res: ServerResponse, refusal: Refusal): void {
  sendJson(res, refusal.status, { error: refusal.error, message: refusal.message }, refusal.headers);
}

function allowed(path: AdminPath): string {
  return [...(path.get ? ['GET', 'HEAD'] : []), ...(path.post ? ['POST'] : [])].join(', ');
}

export function createAdminListener(deps: AdminDeps): Listener {
  const paths: Readonly<Record<string, AdminPath>> = {
    '/': { private: true, browser: true, get: async (_req, res) => sendText(res, 'text/html; charset=utf-8', renderStatusPage(await deps.status.json())) },
    '/status.json': { private: true, browser: true, get: async (_req, res) => sendJson(res, 200, await deps.status.json()) },
    // The page's code and style hold no data: open, like the probes.
    '/status.js': { get: (_req, res) => sendText(res, 'text/javascript; charset=utf-8', STATUS_SCRIPT) },
    '/status.css': { get: (_req, res) => sendText(res, 'text/css; charset=utf-8', STATUS_STYLE) },
    '/healthz': { get: (_req, res) => sendJson(res, 200, { status: 'ok' }) },
    '/readyz': { get: (_req, res) => (deps.ready() ? sendJson(res, 200, { status: 'ready' }) : sendJson(res, 503, { status: 'not_ready' })) },
    '/metrics': {
      get: async (_req, res) => {
        const text = deps.metricsText ? await deps.metricsText() : await metrics.metrics();
        res.writeHead(200, { 'content-type': metrics.contentType });
        res.end(text);
      },
    },
    '/config': {
      private: true,
      get: (_req, res) => {
        const snapshot = deps.store.current();
        sendJson(res, 200, {
          hash: snapshot.hash,
          source: snapshot.source,
          loadedAt: snapshot.loadedAt.toISOString(),
          config: snapshot.secrets.config(snapshot.config),
        });
      },
    },
    '/upstreams': { private: true, get: async (_req, res) => sendJson(res, 200, await deps.upstreamsView()) },
    // Private like /config: the file paths and what the sidecar trusts are the operator's business.
    '/certs': { private: true, get: async (_req, res) => sendJson(res, 200, await deps.certsView()) },
    '/reload': {
      write: true,
      post: async (_req, res) => {
        const result = await deps.reload();
        return result.ok ? sendJson(res, 200, { hash: result.hash }) : sendJson(res, 400, { errors: result.errors });
      },
    },
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const name = (req.url ?? '/').split('?')[0];
    const path = Object.hasOwn(paths, name) ? paths[name] : undefined;
    if (!path) {
      return sendJson(res, 404, { error: 'not_found', paths: Object.entries(paths).map(([at, { post }]) => (post ? `POST ${at}` : at)) });
    }
    const handler = req.method === 'GET' || req.method === 'HEAD' ? path.get : req.method === 'POST' ? path.post : undefined;
    if (!handler) {
      const allow = allowed(path);
      return sendJson(res, 405, { error: 'method_not_allowed', message: `${name} takes ${allow}` }, { allow });
    }
    const token = deps.store.current().config.admin.token;
    const refusal =
      (path.write ? writeRefusal(req, deps.store.current().config.admin.listen) : undefined) ??
      (path.write || path.private ? tokenRefusal(req, token, path.browser) : undefined);
    if (refusal) return refuse(res, refusal);
    return handler(req, res);
  };
  return new Listener('admin', undefined, {
    request: (req, res) => {
      handle(req, res).catch((err: unknown) => {
        log.error({ err }, 'admin request failed');
        if (!res.headersSent) sendJson(res, 500, { error: 'internal' });
        else res.destroy();
      });
    },
  });
}

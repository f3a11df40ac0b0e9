/**
 * The admin port (loopback by default): health, readiness, Prometheus
 * metrics, the live config, upstream state and reload. It reads state; it
 * never sits on a proxied request's path. What it shows of the config is
 * redacted (config/secrets.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ConfigStore } from '../config/store.ts';
import type { UpstreamRegistry } from '../upstream/registry.ts';
import { Listener } from '../net/listener.ts';
import { registry as metrics } from '../observe/metrics.ts';
import { log } from '../observe/log.ts';

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
  /** Prometheus text; by default this process's registry (a cluster primary adds its workers'). */
  readonly metricsText?: () => Promise<string>;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

export function createAdminListener(deps: AdminDeps): Listener {
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    const route = `${req.method} ${path}`;
    switch (route) {
      case 'GET /healthz':
      case 'HEAD /healthz':
        return sendJson(res, 200, { status: 'ok' });
      case 'GET /readyz':
      case 'HEAD /readyz':
        return deps.ready() ? sendJson(res, 200, { status: 'ready' }) : sendJson(res, 503, { status: 'not_ready' });
      case 'GET /metrics': {
        const text = deps.metricsText ? await deps.metricsText() : await metrics.metrics();
        res.writeHead(200, { 'content-type': metrics.contentType });
        res.end(text);
        return;
      }
      case 'GET /config': {
        const snapshot = deps.store.current();
        return sendJson(res, 200, {
          hash: snapshot.hash,
          source: snapshot.source,
          loadedAt: snapshot.loadedAt.toISOString(),
          config: snapshot.secrets.config(snapshot.config),
        });
      }
      case 'GET /upstreams':
        return sendJson(res, 200, await deps.upstreamsView());
      case 'POST /reload': {
        const result = await deps.reload();
        return result.ok ? sendJson(res, 200, { hash: result.hash }) : sendJson(res, 400, { errors: result.errors });
      }
      default:
        return sendJson(res, 404, { error: 'not_found', paths: ['/healthz', '/readyz', '/metrics', '/config', '/upstreams', 'POST /reload'] });
    }
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

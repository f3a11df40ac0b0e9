/**
 * What a cluster primary and its workers say to each other over the IPC
 * channel of node:cluster.
 */
import type { ReloadResult } from '../admin/server.ts';
import type { OwnAddress } from '../egress/policy.ts';
import type { DiscoveredSets, Unhealthy } from '../upstream/registry.ts';

/**
 * A question the primary asks every worker; each answers with a `reply` of
 * the same id. `own-addresses` carries `addresses`: the primary's admin
 * listener and every worker's listeners, which egress must never reach (a loop).
 */
export type WorkerQuestion = 'reload' | 'metrics' | 'upstreams' | 'certs' | 'own-addresses' | 'recent-errors';

export type ToWorker =
  | { readonly type: 'ask'; readonly id: number; readonly question: WorkerQuestion; readonly addresses?: readonly OwnAddress[] }
  | { readonly type: 'app-ready'; readonly ready: boolean }
  /** The verdicts of the active health checks, which only the primary runs: every endpoint they hold unhealthy. */
  | { readonly type: 'health'; readonly unhealthy: readonly Unhealthy[] }
  /** The endpoints the primary's DNS discovery found, which workers route to instead of resolving themselves. */
  | { readonly type: 'discovered'; readonly sets: DiscoveredSets };

/** `listening` and `addresses` (after a reload) carry the listeners the worker has bound. */
export type ToPrimary =
  | { readonly type: 'listening'; readonly addresses: readonly OwnAddress[] }
  | { readonly type: 'addresses'; readonly addresses: readonly OwnAddress[] }
  | { readonly type: 'reply'; readonly id: number; readonly answer: WorkerAnswer };

/**
 * reload -> ReloadResult; metrics -> prom-client's metrics as JSON; upstreams / certs -> the worker's /upstreams / /certs
 * view; own-addresses -> true; recent-errors -> the worker's RecentError[] (status/recent-errors.ts).
 */
export type WorkerAnswer = ReloadResult | unknown;

/** The environment variable that gives a new worker the verdicts as of its fork (JSON of `Unhealthy[]`). */
export const UNHEALTHY_ENV = 'SIDECAR_UNHEALTHY';

/** The environment variable that gives a new worker the discovered endpoints as of its fork (JSON of `DiscoveredSets`). */
export const DISCOVERED_ENV = 'SIDECAR_DISCOVERED';

export function isMessage<T extends { type: string }>(value: unknown): value is T {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string';
}

/**
 * What a cluster primary and its workers say to each other over the IPC
 * channel of node:cluster.
 */
import type { ReloadResult } from '../admin/server.ts';
import type { Unhealthy } from '../upstream/registry.ts';

/** A question the primary asks every worker; each answers with a `reply` of the same id. */
export type WorkerQuestion = 'reload' | 'metrics' | 'upstreams';

export type ToWorker =
  | { readonly type: 'ask'; readonly id: number; readonly question: WorkerQuestion }
  | { readonly type: 'app-ready'; readonly ready: boolean }
  /** The verdicts of the active health checks, which only the primary runs: every endpoint they hold unhealthy. */
  | { readonly type: 'health'; readonly unhealthy: readonly Unhealthy[] };

export type ToPrimary =
  | { readonly type: 'listening' }
  | { readonly type: 'reply'; readonly id: number; readonly answer: WorkerAnswer };

/** reload -> ReloadResult; metrics -> prom-client's metrics as JSON; upstreams -> the worker's /upstreams view. */
export type WorkerAnswer = ReloadResult | unknown;

/** The environment variable that gives a new worker the verdicts as of its fork (JSON of `Unhealthy[]`). */
export const UNHEALTHY_ENV = 'SIDECAR_UNHEALTHY';

export function isMessage<T extends { type: string }>(value: unknown): value is T {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string';
}

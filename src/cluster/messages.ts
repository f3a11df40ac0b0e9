/**
 * What a cluster primary and its workers say to each other over the IPC
 * channel of node:cluster.
 */
import type { ReloadResult } from '../admin/server.ts';

/** A question the primary asks every worker; each answers with a `reply` of the same id. */
export type WorkerQuestion = 'reload' | 'metrics' | 'upstreams';

export type ToWorker =
  | { readonly type: 'ask'; readonly id: number; readonly question: WorkerQuestion }
  | { readonly type: 'app-ready'; readonly ready: boolean };

export type ToPrimary =
  | { readonly type: 'listening' }
  | { readonly type: 'reply'; readonly id: number; readonly answer: WorkerAnswer };

/** reload -> ReloadResult; metrics -> prom-client's metrics as JSON; upstreams -> the worker's /upstreams view. */
export type WorkerAnswer = ReloadResult | unknown;

export function isMessage<T extends { type: string }>(value: unknown): value is T {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string';
}

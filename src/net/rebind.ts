/**
 * The listener side of a reload. Every listener whose `listen` address
 * changed gets its new server bound first, next to the old one; only when all
 * of them are bound is the change committed: the new servers become the
 * current ones and the old ones stop accepting and finish what they have in
 * flight. One failed bind closes what was bound and fails the reload, with
 * every old listener untouched (Caddy provisions the new config fully before
 * it stops the old one).
 */
import type { ListenerConfig } from '../config/schema.ts';
import { parseListen } from '../config/units.ts';
import type { Listener } from './listener.ts';

/** One listener of the running sidecar and its address before and after the reload. */
export interface ListenerChange {
  /** `ingress`, `egress`, `admin`: the config key the address comes from. */
  readonly key: string;
  readonly listener: Listener | undefined;
  /** The address it is bound to now (the active snapshot's), undefined when the config has no such listener. */
  readonly from: string | undefined;
  readonly to: string | undefined;
  /** The listener's limits in the new config, applied in place on commit. */
  readonly limits?: ListenerConfig;
}

export type RebindPlan =
  | { readonly ok: true; commit(): void; abort(): Promise<void> }
  | { readonly ok: false; readonly errors: readonly string[] };

/** Binds every changed address; resolves to a plan to commit after the snapshot swap, or the errors (nothing changed). */
export async function prepareRebind(changes: readonly ListenerChange[]): Promise<RebindPlan> {
  const errors: string[] = [];
  for (const change of changes) {
    if (change.from === undefined && change.to !== undefined) {
      errors.push(`${change.key}: adding the ${change.key} listener needs a restart (a reload only changes its address)`);
    } else if (change.from !== undefined && change.to === undefined) {
      errors.push(`${change.key}: removing the ${change.key} listener needs a restart`);
    }
  }
  if (errors.length > 0) return { ok: false, errors };

  const moving = changes.filter((change) => change.listener && change.to !== undefined && change.to !== change.from);
  const binds = await Promise.allSettled(
    moving.map((change) => {
      const { host, port } = parseListen(change.to!)!; // the schema only lets valid addresses through
      return change.listener!.bindNext(host, port);
    }),
  );
  binds.forEach((bind, index) => {
    if (bind.status === 'fulfilled') return;
    const code = (bind.reason as { code?: string }).code;
    const why = code === 'EADDRINUSE' ? 'address already in use' : (bind.reason as Error).message;
    errors.push(`${moving[index].key}.listen: cannot listen on ${moving[index].to}: ${why}`);
  });
  if (errors.length > 0) {
    await Promise.all(binds.map((bind) => (bind.status === 'fulfilled' ? bind.value.abort() : undefined)));
    return { ok: false, errors };
  }

  return {
    ok: true,
    commit: () => {
      for (const bind of binds) if (bind.status === 'fulfilled') bind.value.commit();
      for (const change of changes) if (change.listener && change.limits) change.listener.setLimits(change.limits);
    },
    abort: async () => {
      await Promise.all(binds.map((bind) => (bind.status === 'fulfilled' ? bind.value.abort() : undefined)));
    },
  };
}

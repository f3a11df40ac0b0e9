/**
 * One static handler per static route, kept across reloads while the route's
 * prefix and static settings stay the same (so the hot-file cache survives an
 * unrelated config change), dropped when a reload removes or changes it.
 */
import type { CompiledRoute, Snapshot } from '../config/compile.ts';
import { createStaticHandler, type StaticHandler } from './static.ts';

function keyOf(route: CompiledRoute): string {
  return `${route.name}\u0000${route.match.path ?? '/'}\u0000${JSON.stringify(route.static)}\u0000${route.policies?.compression?.settingsKey ?? ''}`;
}

export class StaticHandlers {
  readonly #handlers = new Map<string, StaticHandler>();
  /** Route object -> handler, so the hot path skips building the key. */
  #byRoute = new WeakMap<CompiledRoute, StaticHandler>();

  /** The handler of a static route, created on first use. */
  get(route: CompiledRoute): StaticHandler {
    const known = this.#byRoute.get(route);
    if (known) return known;
    const key = keyOf(route);
    let handler = this.#handlers.get(key);
    if (!handler) {
      handler = createStaticHandler({ name: route.name, prefix: route.match.path ?? '/', config: route.static!, compression: route.policies?.compression });
      this.#handlers.set(key, handler);
    }
    this.#byRoute.set(route, handler);
    return handler;
  }

  /** After a swap: close handlers whose route no longer exists in `next`. */
  retain(next: Snapshot): void {
    const live = new Set((next.ingress?.routes ?? []).filter((route) => route.static).map(keyOf));
    for (const [key, handler] of this.#handlers) {
      if (live.has(key)) continue;
      handler.close();
      this.#handlers.delete(key);
    }
    this.#byRoute = new WeakMap();
  }

  closeAll(): void {
    for (const handler of this.#handlers.values()) handler.close();
    this.#handlers.clear();
    this.#byRoute = new WeakMap();
  }
}

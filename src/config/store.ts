/**
 * The one reference to the live config. A request reads `current()` once at
 * entry and carries that snapshot to its end; `swap()` only changes what the
 * next request sees (Envoy's RDS provider, reduced to one JS reference).
 */
import type { Snapshot } from './compile.ts';

export type SwapListener = (next: Snapshot, previous: Snapshot) => void;

export class ConfigStore {
  #current: Snapshot;
  readonly #listeners: SwapListener[] = [];

  constructor(initial: Snapshot) {
    this.#current = initial;
  }

  current(): Snapshot {
    return this.#current;
  }

  swap(next: Snapshot): void {
    const previous = this.#current;
    this.#current = next;
    for (const listener of this.#listeners) listener(next, previous);
  }

  onSwap(listener: SwapListener): void {
    this.#listeners.push(listener);
  }
}

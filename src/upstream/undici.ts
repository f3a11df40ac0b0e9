/**
 * The parts of undici the sidecar uses, required from undici's own files
 * rather than from its index. The index loads everything undici has (fetch,
 * WebSocket, EventSource, the cache stores and SQLite, mocks, interceptors):
 * about 13 MB of RSS on top of the 9 MB that Pool, Agent and the connector
 * cost (Node 24.21, undici 8.12.4; docs/performance.md, Memory). undici has no
 * `exports` map, so these paths resolve as any file of the package does;
 * its version is pinned exactly in package.json, and test/undici-parts.test.ts
 * checks that these are the classes the index exports.
 *
 * Types come from `import type ... from 'undici'` as usual (erased at run time).
 */
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

const require = createRequire(import.meta.url);
const Dispatcher = require('undici/lib/dispatcher/dispatcher.js') as typeof Undici.Dispatcher;
// What undici's index does: request(), stream(), pipeline(), connect() and upgrade() on every dispatcher.
Object.assign(Dispatcher.prototype, require('undici/lib/api/index.js') as object);

export const undici = {
  Pool: require('undici/lib/dispatcher/pool.js') as typeof Undici.Pool,
  Agent: require('undici/lib/dispatcher/agent.js') as typeof Undici.Agent,
  buildConnector: require('undici/lib/core/connect.js') as typeof Undici.buildConnector,
};

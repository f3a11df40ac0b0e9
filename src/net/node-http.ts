/**
 * node:http, taken with `process.getBuiltinModule` rather than an ES import.
 * An ES import of a builtin builds its namespace from every export, and
 * node:http's exports include the lazy getters `WebSocket`, `MessageEvent`
 * and `CloseEvent`: reading them loads Node's own bundled copy of undici
 * (fetch, WebSocket, web streams), about 13 MB of RSS a sidecar never uses
 * (`import 'node:http'` idles at 58 MB, this at 44 MB, Node 24.21). Import
 * node:http's types with `import type` as usual; take its values from here.
 * test/memory-footprint.test.ts checks that nothing in the sidecar's module
 * graph imports node:http another way.
 */
export const http = process.getBuiltinModule('node:http');

/**
 * The document root every static peer serves (static/1k.bin, static/1m.bin),
 * and upstream/1mib, the 1 MiB answer of the NGINX upstream (the same bytes
 * as the node upstream's /1mib).
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function makeDocumentRoot(tmp: string): string {
  const www = join(tmp, 'www');
  mkdirSync(join(www, 'static'), { recursive: true });
  mkdirSync(join(www, 'upstream'), { recursive: true });
  writeFileSync(join(www, 'static/1k.bin'), Buffer.alloc(1024, 'a'));
  writeFileSync(join(www, 'static/1m.bin'), Buffer.alloc(1024 * 1024, 'b'));
  writeFileSync(join(www, 'upstream/1mib'), Buffer.alloc(1024 * 1024, 'x'));
  // NGINX workers run as an unprivileged user: they must be able to read it.
  for (const dir of [tmp, www, join(www, 'static'), join(www, 'upstream')]) chmodSync(dir, 0o755);
  return www;
}

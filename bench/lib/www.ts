/** The document root every static peer serves: static/1k.bin and static/1m.bin. */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function makeDocumentRoot(tmp: string): string {
  const www = join(tmp, 'www');
  mkdirSync(join(www, 'static'), { recursive: true });
  writeFileSync(join(www, 'static/1k.bin'), Buffer.alloc(1024, 'a'));
  writeFileSync(join(www, 'static/1m.bin'), Buffer.alloc(1024 * 1024, 'b'));
  // NGINX workers run as an unprivileged user: they must be able to read it.
  for (const dir of [tmp, www, join(www, 'static')]) chmodSync(dir, 0o755);
  return www;
}

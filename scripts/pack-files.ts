/**
 * What `npm pack` adds to the package (prepack), and takes away again from the
 * checkout afterwards (postpack: `--clean`, so a checkout never runs a stale
 * build).
 *
 * dist/ is src/ as JavaScript. An installed package lives under node_modules,
 * where Node refuses to strip types, so bin/sidecar.js runs dist/ there (and
 * src/ in a checkout). tsc only erases types and rewrites `./x.ts` imports to
 * `./x.js`: the sources use erasable syntax only, so dist/ is the code the
 * tests ran. Files under src/ that are not TypeScript are copied as they are.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const dist = join(root, 'dist');

rmSync(dist, { recursive: true, force: true });
if (!process.argv.includes('--clean')) {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.dist.json')], { cwd: root, stdio: 'inherit' });
  cpSync(join(root, 'src'), dist, { recursive: true, filter: (source) => !source.endsWith('.ts') });
}

/**
 * Listeners that should stay on loopback: the admin port (it reloads the
 * config and shows its state) and egress (anyone who reaches it sends
 * requests from this host). Bound elsewhere they still work, as in Envoy and
 * HAProxy, but the sidecar says so once at start.
 */
import { BlockList, isIP } from 'node:net';
import type { Snapshot } from '../config/compile.ts';
import { parseListen } from '../config/units.ts';

/** One warning line: its fields and its message. */
export interface ExposureWarning {
  readonly listener: 'admin' | 'egress';
  readonly listen: string;
  readonly message: string;
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** True for 127.0.0.0/8, ::1 (IPv4-mapped too: BlockList compares canonical forms) and `localhost`; a wildcard or another name is not. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
  if (bare === 'localhost') return true;
  const family = isIP(bare);
  return family !== 0 && LOOPBACK.check(bare, family === 4 ? 'ipv4' : 'ipv6');
}

/** A warning for the admin port and for egress when either is bound beyond loopback. */
export function exposureWarnings({ config, secrets }: Pick<Snapshot, 'config' | 'secrets'>): ExposureWarning[] {
  const warnings: ExposureWarning[] = [];
  const exposed = (listen: string) => !isLoopbackHost(parseListen(listen)?.host ?? '');
  const admin = config.admin.listen;
  if (exposed(admin)) {
    const guard = config.admin.token === undefined ? 'set admin.token so that only holders of the token can reload' : 'writes need admin.token';
    warnings.push({
      listener: 'admin',
      listen: String(secrets.shown(['admin', 'listen'], admin)),
      message: `the admin port listens beyond loopback: every host that reaches it can read /metrics; ${guard}`,
    });
  }
  const egress = config.egress?.listen;
  if (egress !== undefined && exposed(egress)) {
    const guard = config.egress?.auth === undefined ? '; set egress.auth to require credentials' : '';
    warnings.push({
      listener: 'egress',
      listen: String(secrets.shown(['egress', 'listen'], egress)),
      message: `egress listens beyond loopback: every host that reaches it can send requests through this sidecar${guard}`,
    });
  }
  return warnings;
}

/**
 * The config as the admin port shows it: every secret replaced. Secrets are
 * named by key, so a new secret-bearing key is added here once.
 */
import type { Config } from '../config/schema.ts';

/** Key names whose values are secret (also inside app.env: DB_PASSWORD, API_TOKEN, ...). */
const SECRET_KEY = /password|secret|token|authorization|api[-_]?key|credential/i;
export const REDACTED = '[redacted]';

/** A deep copy of `config` with secret values replaced. */
export function redactConfig(config: Config): unknown {
  return redact(config);
}

function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    out[key] = SECRET_KEY.test(key) ? REDACTED : redact(inner);
  }
  return out;
}

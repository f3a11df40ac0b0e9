/**
 * Durations and sizes as people write them in YAML ("250ms", "2s", "64KiB").
 * Both parsers return `undefined` for text they cannot read, so the schema can
 * report the key path instead of throwing.
 */

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** What a duration looks like in the file: a number and a unit, or a plain 0 (for the JSON Schema). */
export const DURATION_PATTERN = '^\\s*(\\d+(\\.\\d+)?\\s*(ms|s|m|h)|0+(\\.0+)?)\\s*$';

/**
 * Parses "250ms", "2s", "1.5m", "1h" into milliseconds. A number without a
 * unit is refused (undefined), 0 excepted (it is 0 in any unit): `timeout: 15`
 * meant 15 seconds as often as 15 ms, and Envoy and Caddy refuse it too.
 * `unitless` tells that case apart for the error message.
 */
export function parseDuration(text: string | number): number | undefined {
  if (unitless(text) !== undefined) return Number(String(text).trim()) === 0 ? 0 : undefined;
  if (typeof text === 'number') return undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/.exec(text);
  if (!match) return undefined;
  return Math.round(Number(match[1]) * DURATION_UNITS[match[2]]);
}

/** The number as written when `value` is a non-negative number without a unit (15, "15", "1.5"); undefined otherwise. */
export function unitless(value: string | number): string | undefined {
  const text = String(value).trim();
  return /^\d+(\.\d+)?$/.test(text) ? text : undefined;
}

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/** Parses "512", "64KiB", "1MiB", "10MB" (case-insensitive units) into bytes. */
export function parseSize(text: string | number): number | undefined {
  if (typeof text === 'number') return Number.isInteger(text) && text >= 0 ? text : undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (!match) return undefined;
  const unit = SIZE_UNITS[(match[2] || 'b').toLowerCase()];
  if (unit === undefined) return undefined;
  return Math.floor(Number(match[1]) * unit);
}

/** Splits "host:port", "[::1]:port" or ":port" into parts; undefined when malformed. */
export function parseListen(text: string): { host: string; port: number } | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s\[\]]*)):(\d{1,5})$/.exec(text.trim());
  if (!match) return undefined;
  const port = Number(match[3]);
  if (port > 65535) return undefined;
  const host = match[1] ?? (match[2] || '0.0.0.0');
  return { host, port };
}

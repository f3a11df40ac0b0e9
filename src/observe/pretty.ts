/**
 * `--pretty` (or a terminal on stdout): the log for a person reading it, one
 * line per event. An access line reads like NGINX's, e.g.
 *
 *   12:00:01.123 ingress GET /api/x -> 200 3.2ms app (127.0.0.1:3000) reqId=...
 *
 * where pino-pretty printed a block of 15 lines per request; any other line
 * is `time LEVEL message key=value ...`, with an error's stack on the lines
 * below it. Times are local (a person's clock); with colours, a line's level
 * and an access line's status class stand out.
 *
 * Everything a client sent (path, host, user agent) reaches a terminal here,
 * so control characters are escaped: an escape sequence in a path must not
 * repaint the operator's screen.
 */
import type { DestinationStream } from 'pino';
import { accessLevel, hundredthsJson, type AccessRecord } from './access-line.ts';

const COLOR = { red: '\u001b[31m', yellow: '\u001b[33m', green: '\u001b[32m', cyan: '\u001b[36m', gray: '\u001b[90m', reset: '\u001b[39m' } as const;

const LEVEL_COLOR: Record<string, string> = { fatal: COLOR.red, error: COLOR.red, warn: COLOR.yellow, info: COLOR.green, debug: COLOR.cyan, trace: COLOR.gray };

function paint(text: string, color: string | undefined, colors: boolean): string {
  return colors && color ? `${color}${text}${COLOR.reset}` : text;
}

const two = (n: number): string => (n < 10 ? `0${n}` : String(n));

/** HH:MM:ss.mmm, local time. */
function clock(epochMs: number): string {
  const d = new Date(epochMs);
  const ms = d.getMilliseconds();
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}`;
}

/** C0 and C1 control characters (JSON.stringify leaves U+007F-U+009F as they are, and a terminal obeys them). */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

function escapeControl(text: string): string {
  return text.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A value as it is when it is one plain token, else quoted as JSON; never a raw control character. */
function token(text: string): string {
  if (text !== '' && /^[\x21-\x7e]+$/.test(text)) return text;
  return escapeControl(JSON.stringify(text));
}

/** One access record as one readable line, newline included. */
export function prettyAccessLine(record: AccessRecord, colors: boolean): string {
  const level = accessLevel(record);
  const status = record.status;
  const statusColor = status >= 500 ? COLOR.red : status >= 400 ? COLOR.yellow : undefined;
  // Egress: the destination is the point; ingress: the path (the Host is nearly always the same).
  const target = record.listener === 'egress' ? `${record.host}${record.path}` : record.path;
  let line = `${clock(record.endedAt)} ${record.listener} ${record.method ? token(record.method) : '-'} ${target ? token(target) : '-'}`;
  line += ` -> ${paint(String(status), statusColor, colors)} ${hundredthsJson(record.durationMs)}ms`;
  const served = record.upstream || record.route;
  if (served) line += ` ${token(served)}`;
  if (record.endpoint) line += ` (${token(record.endpoint)})`;
  if (record.error !== undefined) line += ` ${paint(`error=${record.error}`, level === 'info' ? undefined : LEVEL_COLOR[level], colors)}`;
  if (record.attempts > 1) line += ` attempts=${record.attempts}`;
  if (record.retryStop !== undefined) line += ` retryStop=${record.retryStop}`;
  if (record.aborted) line += ' aborted';
  if (record.clientCert !== undefined) line += ` clientCert=${token(record.clientCert)}`;
  // Tunnels and WebSockets are about the bytes they carried; a request rejected unread, about who sent it.
  if (record.method === 'CONNECT' || status === 101) line += ` in=${record.bytesIn}B out=${record.bytesOut}B`;
  if (!record.method && record.clientAddress !== undefined) line += ` client=${token(record.clientAddress)}:${record.clientPort}`;
  return `${line} reqId=${token(record.reqId)}\n`;
}

/** Keys every line has, shown in the line's head or not at all. */
const HEAD_KEYS = new Set(['level', 'time', 'pid', 'hostname', 'msg']);

/** Any JSON log line (pino's) as one readable line, plus the stack of an error it carries; a line that is not JSON is passed on. */
export function prettyLine(json: string, colors: boolean): string {
  let entry: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(json);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return `${escapeControl(json)}\n`;
    entry = parsed as Record<string, unknown>;
  } catch {
    return `${escapeControl(json)}\n`;
  }
  const level = typeof entry.level === 'string' ? entry.level : String(entry.level ?? '');
  const time = typeof entry.time === 'string' ? Date.parse(entry.time) : typeof entry.time === 'number' ? entry.time : NaN;
  let line = `${clock(Number.isNaN(time) ? Date.now() : time)} ${paint(level.toUpperCase().padEnd(5), LEVEL_COLOR[level], colors)}`;
  if (entry.msg !== undefined) line += ` ${escapeControl(String(entry.msg))}`;
  const stacks: string[] = [];
  for (const [key, value] of Object.entries(entry)) {
    if (HEAD_KEYS.has(key) || value === undefined) continue;
    if (typeof value === 'object' && value !== null && typeof (value as { stack?: unknown }).stack === 'string') {
      const { stack, ...rest } = value as { stack: string };
      stacks.push(stack);
      line += ` ${key}=${escapeControl(JSON.stringify(rest))}`;
      continue;
    }
    line += ` ${key}=${typeof value === 'string' ? token(value) : escapeControl(JSON.stringify(value))}`;
  }
  for (const stack of stacks) line += `\n    ${stack.split('\n').map(escapeControl).join('\n    ')}`;
  return `${line}\n`;
}

/** A destination that turns the JSON lines pino writes into prettyLine's, and hands them to `sink`. */
export function prettyDestination(sink: DestinationStream, colors: boolean): DestinationStream {
  return {
    write(chunk: string): void {
      let out = '';
      for (const json of chunk.split('\n')) if (json !== '') out += prettyLine(json, colors);
      sink.write(out);
    },
  };
}

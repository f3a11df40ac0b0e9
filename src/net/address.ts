/**
 * IP literals reduced to one spelling, so that addresses are compared as
 * addresses and never as strings. A resolver (glibc's inet_aton) and the
 * WHATWG URL parser both accept `127.1`, `2130706433`, `0x7f.0.0.1` and
 * `0177.0.0.1` for 127.0.0.1; an IPv6 socket reaches 127.0.0.1 through
 * `::ffff:127.0.0.1` or `::ffff:7f00:1`; `0:0::1` is `::1`. A check that
 * compares text would let every one of those past a rule written for the
 * plain spelling. ipaddr.js parses all of them (the parser proxy-addr and
 * fastify trust for the same job); what it refuses but the WHATWG URL parser
 * still reads as IPv4 (`0x`, `1.0x`: 0.0.0.0, 1.0.0.0) goes by the URL
 * parser, since undici, which opens the connections, parses hosts with it.
 */
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/** The only characters an IPv4 literal in any of its forms can hold (decimal, octal, hex parts). */
const IPV4_FORM = /^[0-9a-fx.]+$/i;

/**
 * The canonical text of an IP literal in any spelling (brackets allowed
 * around IPv6): dotted-quad IPv4, RFC 5952 IPv6, and an IPv4-mapped IPv6
 * address as the IPv4 address it reaches. Undefined for a name.
 */
export function canonicalIp(text: string): string | undefined {
  const bare = text.length > 2 && text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  // Most hosts are names: skip the parser for them (it tries several formats in turn).
  if (!bare.includes(':') && !IPV4_FORM.test(bare)) return undefined;
  if (ipaddr.isValid(bare)) return ipaddr.process(bare).toString();
  return bare.includes(':') ? undefined : whatwgIpv4(bare);
}

/** The IPv4 address the URL parser makes of `text`, if it makes one. */
function whatwgIpv4(text: string): string | undefined {
  try {
    const host = new URL(`http://${text}/`).hostname;
    return isIP(host) === 4 ? host : undefined;
  } catch {
    return undefined;
  }
}

/** 64:ff9b::/96 (NAT64, RFC 6052) and ::/96 (IPv4-compatible, deprecated) carry an IPv4 address in their last 32 bits. */
const NAT64_PREFIX = [0x64, 0xff9b, 0, 0, 0, 0];
const COMPATIBLE_PREFIX = [0, 0, 0, 0, 0, 0];

/**
 * The IPv4 address a canonical IPv6 address carries in its last 32 bits, when
 * it is a NAT64 or IPv4-compatible address (a NAT64 gateway connects to that
 * IPv4 address); undefined otherwise.
 */
export function embeddedIpv4(canonical: string): string | undefined {
  if (!canonical.includes(':')) return undefined;
  const address = ipaddr.parse(canonical);
  if (address.kind() !== 'ipv6') return undefined;
  const parts = (address as ipaddr.IPv6).parts;
  const prefix = parts.slice(0, 6);
  const nat64 = prefix.every((part, i) => part === NAT64_PREFIX[i]);
  // :: and ::1 are IPv6's own unspecified and loopback addresses, not IPv4 0.0.0.0 / 0.0.0.1.
  const compatible = prefix.every((part, i) => part === COMPATIBLE_PREFIX[i]) && (parts[6] !== 0 || parts[7] > 1);
  if (!nat64 && !compatible) return undefined;
  return `${parts[6] >> 8}.${parts[6] & 0xff}.${parts[7] >> 8}.${parts[7] & 0xff}`;
}

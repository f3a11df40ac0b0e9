/**
 * A route's policies in the order they run (rate limit first, so a refused
 * request costs no compression work), compiled once per snapshot from the
 * route's `rateLimit` and `compress` (or its listener's `compress`). The
 * listeners call `admit` once per request, right after routing.
 */
import type { ClientRequest, ClientResponse } from '../net/client.ts';
import type { BlockList } from 'node:net';
import type { ListenerName } from '../config/compile.ts';
import type { CompressConfig, RateLimitConfig } from '../config/schema.ts';
import { isGrpc, type ProxyError } from '../core/errors.ts';
import { refuse, refuseGrpc, type AnsweredRequest } from '../net/error-answer.ts';
import { CompressPolicy } from './compress.ts';
import { Compression } from './compression.ts';
import type { Policy, PolicyDecision, ResponseFilter } from './policy.ts';
import { RateLimitPolicy } from './rate-limit.ts';
import type { PolicyState } from './state.ts';

/** What the chain made of a request: a refusal, or headers and a response filter (any may be absent). */
export type Admission = PolicyDecision;

export class PolicyChain {
  readonly policies: readonly Policy[];
  /** The route's compression: static routes compress files themselves (ingress/static-encode.ts), not through a response filter. */
  readonly compression: Compression | undefined;
  /** Keys of the state its policies keep across reloads (PolicyState.retain). */
  readonly stateKeys: readonly string[];

  constructor(policies: readonly Policy[], compression: Compression | undefined, stateKeys: readonly string[]) {
    this.policies = Object.freeze([...policies]);
    this.compression = compression;
    this.stateKeys = Object.freeze([...stateKeys]);
  }

  /** Runs every policy on the request head; undefined when none had anything to say. */
  admit(req: ClientRequest, state: PolicyState): Admission | undefined {
    const policies = this.policies;
    if (policies.length === 0) return undefined;
    const request = { req, state, now: performance.now() };
    let headers: Record<string, string> | undefined;
    let response: ResponseFilter | undefined;
    let release: (() => void) | undefined;
    for (const policy of policies) {
      const decision = policy.decide(request);
      if (decision === undefined) continue;
      if (decision.headers) headers = headers ? { ...headers, ...decision.headers } : decision.headers;
      if (decision.refusal) return { refusal: decision.refusal, headers };
      // One response filter per route: compile() never makes two.
      response ??= decision.response;
      release ??= decision.release;
    }
    return headers || response || release ? { headers, response, release } : undefined;
  }
}

/**
 * Answers a request its route's policies refused, with the policies' headers:
 * the error's status (429), or for gRPC the error's grpc-status in a
 * trailers-only answer.
 */
export function answerRefusal(res: ClientResponse, request: AnsweredRequest, refusal: ProxyError, headers: Record<string, string> | undefined): void {
  if (isGrpc(res.req.headers)) refuseGrpc(res, request, refusal, headers);
  else refuse(res, request, refusal, headers);
}

/** The policy keys of a route, as the schema gives them. */
export interface RoutePolicyConfig {
  /** `false`: no compression on this route, whatever its listener says. */
  readonly compress?: CompressConfig | false;
  readonly rateLimit?: RateLimitConfig;
}

/** Where a route is: what its policies need to know besides their own settings. */
export interface RoutePlace {
  readonly listener: ListenerName;
  readonly route: string;
  readonly static: boolean;
  readonly trustedProxies: BlockList | undefined;
  readonly workers: number;
  /** The listener's `compress`: the default of its routes. */
  readonly listenerCompress: CompressConfig | undefined;
}

/** The chain of a route, or undefined when it has no policy (the request path then skips it with one check). */
export function compilePolicies(config: RoutePolicyConfig, place: RoutePlace): PolicyChain | undefined {
  const policies: Policy[] = [];
  const stateKeys: string[] = [];
  if (config.rateLimit) {
    const limit = new RateLimitPolicy(config.rateLimit, place);
    policies.push(limit);
    stateKeys.push(limit.stateKey);
  }
  const settings = config.compress === undefined ? place.listenerCompress : config.compress || undefined;
  const compression = settings && new Compression(settings);
  if (compression && !place.static) policies.push(new CompressPolicy(compression, place.route));
  if (policies.length === 0 && !compression) return undefined;
  return Object.freeze(new PolicyChain(policies, compression, stateKeys));
}

// The currency of the resolver chain: a Query goes down the stages, an Answer comes back up.
import type { ParsedQuery } from '../wire/query.js';
import type { ResponseInfo } from '../wire/message.js';

export interface Client {
  address: string;
  port: number;
  family: 4 | 6;
}

export interface Query {
  /** The request as received (the question bytes are echoed from it, keeping the client's 0x20 case). */
  readonly msg: Buffer;
  readonly q: ParsedQuery;
  readonly client: Client;
  readonly protocol: 'udp' | 'tcp';
  /** performance.now() when the packet arrived. */
  readonly receivedAt: number;
}

export type Outcome = 'blocked' | 'cached' | 'forwarded' | 'local' | 'stale' | 'refused' | 'servfail' | 'special';

export interface Answer {
  /** The complete response for this client (its ID, its question, its EDNS). */
  wire: Buffer;
  outcome: Outcome;
  /** Why: the rule and lists for a block, the upstream for a forward, the limit for a refusal. */
  reason: string;
  rcode: number;
  upstream?: string;
  vendor?: string | null;
  /** Set by the block stage when an allow rule decided the name: the rule and lists that let it through. */
  allowedBy?: { readonly reason: string; readonly sources: readonly string[] };
  /** Set by the forward stage so the cache can keep the answer without re-parsing it. */
  upstreamBody?: Buffer;
  upstreamInfo?: ResponseInfo;
  /** CNAME targets in the answer (for CNAME-cloaking inspection). */
  cnames?: readonly string[];
  /** Set by the access stage on a refusal: why the client was turned away (stats count by it). */
  refusal?: Refusal;
}

/** Why a client was turned away. */
export type Refusal = 'outside-allow-clients' | 'rate-limited';

export type Handler = (query: Query) => Answer | Promise<Answer>;
/** A stage answers or calls next, never both (CoreDNS's rule). */
export type Stage = (next: Handler) => Handler;

/** Compose stages in the order given, the first seeing every query first; `terminal` ends the chain. */
export function chain(stages: readonly Stage[], terminal: Handler): Handler {
  let handler = terminal;
  for (let i = stages.length - 1; i >= 0; i--) handler = stages[i](handler);
  return handler;
}

export function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}

// What travels between the DNS thread and the query-log writer: a Batch of columns (typed arrays
// that move to the writer thread without a copy) plus the strings first seen since the last batch,
// and the read API the HTTP side asks the writer for. Plain data only: it crosses a thread.
import type { Outcome } from '../pipeline/types.js';

/**
 * Queries recorded since the last flush, one column per field, `n` rows. String columns hold
 * session ids: small integers the recorder hands out per distinct string; `strings` carries the
 * texts of the ids first used in this batch.
 */
export interface Batch {
  n: number;
  /** Epoch milliseconds. */
  time: Float64Array;
  client: Int32Array;
  name: Int32Array;
  /** -1: none. */
  reason: Int32Array;
  /** -1: the answer named no vendor; the writer looks the name up in the vendor catalog. */
  vendor: Int32Array;
  /** -1: none. */
  upstream: Int32Array;
  qtype: Uint16Array;
  /** Outcome code | protocol << 3 (see codes.ts). */
  flags: Uint8Array;
  rcode: Uint16Array;
  /** Answer time in microseconds. */
  us: Uint32Array;
  strings: {
    /** Forget every earlier session id before reading this batch (the recorder's table was full). */
    reset: boolean;
    /** Session id of texts[0]; the others follow consecutively. */
    base: number;
    texts: string[];
  };
  /** Block reasons first seen in this batch: which rule and which lists they stand for. */
  reasons: BlockReason[];
}

export interface BlockReason {
  /** Session id of the reason text. */
  reason: number;
  /** The deciding rule as the decision states it, e.g. `||tracking.example.com^ (list-a, list-b)`. */
  rule: string;
  lists: string[];
  /** A block, or an allow rule that let the answer through. */
  action: 'block' | 'allow';
}

export interface WriteResult {
  rows: number;
  ms: number;
}

export interface MaintainResult {
  deletedRows: number;
  /** Hours of roll-ups dropped (retention or the size cap). */
  deletedHours: number;
  /** Strings no longer referred to, deleted. */
  deletedStrings: number;
  bytes: number;
  /** Still over the size cap with only the newest hour left: the cap is too small for one hour. */
  overCap: boolean;
  ms: number;
}

/** A time window in epoch milliseconds, until exclusive. */
export interface Window {
  since: number;
  until: number;
}

export type ByOutcome = Partial<Record<Outcome, number>>;

export interface OutcomeCounts {
  total: number;
  blocked: number;
  /** Everything answered that was not blocked (forwarded, cached, stale, local, special). */
  allowed: number;
  byOutcome: ByOutcome;
}

export interface Summary extends OutcomeCounts {
  /** Hours are whole: the window is widened to the hours it touches. */
  window: Window;
  clients: number;
  /** Queries per minute over the window. */
  averagePerMinute: number;
  topVendors: VendorCount[];
  /** One entry per hour of the window, oldest first. */
  series: { hour: number; blocked: number; allowed: number }[];
}

export interface VendorCount {
  vendor: string;
  blocked: number;
  allowed: number;
  byOutcome: ByOutcome;
}

export interface DeviceCounts {
  /** As logged (anonymised when that is on). */
  client: string;
  total: number;
  blocked: number;
  allowed: number;
  byOutcome: ByOutcome;
  /** The newest logged query of this client (epoch ms), or null when its rows are gone. */
  lastSeen: number | null;
  vendors: VendorCount[];
}

export type TopKind = 'blocked' | 'queried' | 'clients' | 'vendors' | 'lists' | 'rules';

export interface TopArgs extends Window {
  kind: TopKind;
  limit: number;
}

export interface TopEntry {
  key: string;
  count: number;
  /** For names and clients: how many of them were blocked; for rules and lists: the blocks they decided. */
  blocked?: number;
  /** For rules and lists: the answers an allow rule of theirs let through. */
  allowed?: number;
  /** For blocked names: the most recent rule and its lists. */
  rule?: string | null;
  lists?: string[];
}

export interface PageArgs {
  since: number;
  until: number;
  limit: number;
  /** Row key to continue below (exclusive); null for the newest rows. */
  cursor: number | null;
  client?: string | null;
  /** Substring of the name. */
  name?: string | null;
  outcomes?: number[] | null;
  vendor?: string | null;
}

export interface LogRow {
  key: number;
  time: number;
  client: string;
  name: string;
  qtype: number;
  protocol: 'udp' | 'tcp';
  outcome: Outcome;
  rcode: number;
  reason: string | null;
  vendor: string | null;
  upstream: string | null;
  ms: number;
}

export interface Page {
  rows: LogRow[];
  /** Pass back as `cursor` for the next (older) page; null when nothing older is left. */
  next: number | null;
  /** True when the page stopped early (a filter matched few of many rows): follow `next` for more. */
  partial: boolean;
}

export interface HitCounts {
  blocked: number;
  allowed: number;
}

export interface ListHits {
  list: string;
  /** Over everything the log keeps. */
  total: HitCounts;
  window: HitCounts;
}

export interface RuleHits {
  rule: string;
  total: HitCounts;
  window: HitCounts;
}

export interface StoreSize {
  bytes: number;
  rows: number;
  oldest: number | null;
}

/** What the HTTP side may ask the writer. Arguments and results are plain data. */
export interface ReadApi {
  summary(args: Window & { topVendors: number }): Summary;
  devices(args: Window): DeviceCounts[];
  top(args: TopArgs): TopEntry[];
  page(args: PageArgs): Page;
  listHits(args: Window): ListHits[];
  /** Hits of the given rules (as their reasons read, e.g. `@@||name^ (user-allow)`), in the order asked. */
  ruleHits(args: Window & { rules: string[] }): RuleHits[];
  size(args: Record<string, never>): StoreSize;
}

export type ReadMethod = keyof ReadApi;
export type ReadArgs<M extends ReadMethod> = Parameters<ReadApi[M]>[0];
export type ReadResult<M extends ReadMethod> = ReturnType<ReadApi[M]>;

import type { UpstreamSpec } from './spec.js';

export interface UpstreamCounters {
  /** Queries handed to this upstream. */
  sent: number;
  /** Queries that got a valid response (any RCODE). */
  answered: number;
  timeouts: number;
  /** Network failures and unusable responses. */
  errors: number;
  /** Replies with the wrong ID, question or source address: possible poisoning attempts. */
  mismatched: number;
  /** UDP answers with TC=1 that were asked again over TCP. */
  truncatedRetries: number;
  /** Sum of the latency of answered queries; divide by `answered` for the mean. */
  latencyMsSum: number;
}

export function newCounters(): UpstreamCounters {
  return { sent: 0, answered: 0, timeouts: 0, errors: 0, mismatched: 0, truncatedRetries: 0, latencyMsSum: 0 };
}

export interface Upstream {
  /** The canonical URL, e.g. `tls://dns.example.org@192.0.2.53:853`. */
  readonly name: string;
  readonly spec: UpstreamSpec;
  /**
   * Sends a complete DNS query (any ID) and resolves with the validated response carrying the
   * caller's ID again. The wire uses a fresh random ID (ID 0 for DoH, as RFC 8484 asks).
   * Rejects with UpstreamError.
   */
  exchange(query: Buffer, timeoutMs: number): Promise<Buffer>;
  close(): Promise<void>;
  readonly counters: UpstreamCounters;
}

/** Options that apply to every upstream of a pool. */
export interface UpstreamClientOptions {
  /** Extra CA certificate(s) trusted for DoT and DoH (tests use a self-signed one). */
  tlsCa?: string | Buffer;
  /** How long an unused DoT connection stays open (default 10 s). */
  tlsIdleMs?: number;
}

export type UpstreamErrorCode = 'timeout' | 'network' | 'bad-response' | 'all-failed';

export interface UpstreamFailure {
  upstream: string;
  code: UpstreamErrorCode | 'servfail' | 'refused' | 'skipped';
  message: string;
}

export class UpstreamError extends Error {
  constructor(
    readonly code: UpstreamErrorCode,
    message: string,
    readonly upstream?: string,
    /** For 'all-failed': what went wrong with each upstream that was tried. */
    readonly causes?: readonly UpstreamFailure[],
    options?: { cause?: unknown },
  ) {
    super(upstream === undefined ? message : `${upstream}: ${message}`, options);
    this.name = 'UpstreamError';
  }
}

/** Wraps whatever a socket or HTTP client threw so callers can decide by code. */
export function networkError(upstream: string, err: unknown): UpstreamError {
  if (err instanceof UpstreamError) return err;
  const e = err as NodeJS.ErrnoException | undefined;
  const detail = e?.code !== undefined ? `${e.code} ${e.message}` : String(e?.message ?? err);
  return new UpstreamError('network', detail, upstream, undefined, { cause: err });
}

/** Runs one exchange and books its outcome: answered with latency, or timeout / error. */
export async function counted(counters: UpstreamCounters, run: () => Promise<Buffer>): Promise<Buffer> {
  counters.sent++;
  const started = performance.now();
  try {
    const reply = await run();
    counters.answered++;
    counters.latencyMsSum += performance.now() - started;
    return reply;
  } catch (err) {
    if (err instanceof UpstreamError && err.code === 'timeout') counters.timeouts++;
    else counters.errors++;
    throw err;
  }
}

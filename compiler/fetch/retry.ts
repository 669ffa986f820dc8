// When to try again: exponential backoff with jitter, or what the server asked for.

/** Delay before retry number `retry` (0-based): base·2^retry, scaled by a random 50–100 %. */
export function backoffMs(retry: number, baseMs: number, random: () => number = Math.random): number {
  const full = baseMs * 2 ** retry;
  return Math.round(full / 2 + (random() * full) / 2);
}

/** Retry-After as ms: delta-seconds or an HTTP-date (RFC 9110 §10.2.3); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!v) return undefined;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

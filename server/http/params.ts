// Request input, checked once: every bad value becomes a 4xx with a message and the field at fault.
import { parseDuration } from '../../common/config.js';
import { OUTCOME_CODE } from '../querylog/codes.js';
import type { Outcome } from '../pipeline/types.js';
import type { Window } from '../querylog/types.js';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

const DAY_MS = 86_400_000;

/**
 * A point in time: ISO 8601 (2024-05-01T12:00:00Z), epoch seconds or milliseconds, or a duration
 * back from now (24h, 30m, 7d).
 */
export function parseTime(field: string, value: string, now: number): number {
  const v = value.trim();
  if (/^\d{10}$/.test(v)) return Number(v) * 1000;
  if (/^\d{12,13}$/.test(v)) return Number(v);
  if (/^\d+(\.\d+)?\s*(ms|s|m|h|d)$/i.test(v)) return now - parseDuration(v)!;
  if (/^\d{4}-\d{2}-\d{2}/.test(v)) {
    const t = Date.parse(v);
    if (Number.isFinite(t)) return t;
  }
  throw new HttpError(400, `${field} = ${JSON.stringify(value.slice(0, 60))}: expected an ISO time (2024-05-01T12:00:00Z), epoch seconds or milliseconds, or a duration back from now (30m, 24h, 7d)`, field);
}

/** `since` (default: 24 hours ago) and `until` (default: now). */
export function parseWindow(url: URL, now = Date.now(), defaultMs = DAY_MS): Window {
  const s = url.searchParams.get('since');
  const u = url.searchParams.get('until');
  const since = s ? parseTime('since', s, now) : now - defaultMs;
  const until = u ? parseTime('until', u, now) : now;
  if (until <= since) throw new HttpError(400, 'until must be later than since', 'until');
  return { since, until };
}

export function parseIntParam(url: URL, field: string, def: number, min: number, max: number): number {
  const v = url.searchParams.get(field);
  if (v === null || v === '') return def;
  if (!/^\d{1,9}$/.test(v)) throw new HttpError(400, `${field} = ${JSON.stringify(v.slice(0, 30))}: expected a whole number from ${min} to ${max}`, field);
  const n = Number(v);
  if (n < min || n > max) throw new HttpError(400, `${field} = ${n}: expected a whole number from ${min} to ${max}`, field);
  return n;
}

/** Free text with a length cap and no control characters. */
export function parseText(url: URL, field: string, maxLength: number): string | null {
  const v = url.searchParams.get(field);
  if (v === null || v === '') return null;
  if (v.length > maxLength) throw new HttpError(400, `${field} is longer than ${maxLength} characters`, field);
  for (let i = 0; i < v.length; i++) if (v.charCodeAt(i) < 0x20) throw new HttpError(400, `${field} contains a control character`, field);
  return v;
}

/** Comma-separated outcomes, as codes. */
export function parseOutcomes(url: URL): number[] | null {
  const v = parseText(url, 'outcome', 200);
  if (v === null) return null;
  return v.split(',').map((o) => {
    const code = OUTCOME_CODE[o.trim() as Outcome];
    if (code === undefined) throw new HttpError(400, `outcome = ${JSON.stringify(o.slice(0, 30))}: expected one or more of ${Object.keys(OUTCOME_CODE).join(', ')}`, 'outcome');
    return code;
  });
}

export function parseCursor(url: URL): number | null {
  const v = url.searchParams.get('cursor');
  if (v === null || v === '') return null;
  if (!/^\d{1,16}$/.test(v)) throw new HttpError(400, 'cursor: expected the `next` value of a previous page', 'cursor');
  return Number(v);
}

export function oneOf<T extends string>(url: URL, field: string, choices: readonly T[], def: T): T {
  const v = url.searchParams.get(field);
  if (v === null || v === '') return def;
  if (!(choices as readonly string[]).includes(v)) throw new HttpError(400, `${field} = ${JSON.stringify(v.slice(0, 30))}: expected one of ${choices.join(', ')}`, field);
  return v as T;
}

/** Fields of a JSON body. */
export function bodyString(body: Record<string, unknown>, field: string, opts: { required: boolean; max: number }): string | null {
  const v = body[field];
  if (v === undefined || v === null) {
    if (opts.required) throw new HttpError(400, `${field} is required`, field);
    return null;
  }
  if (typeof v !== 'string') throw new HttpError(400, `${field}: expected text`, field);
  if (v.length === 0 && opts.required) throw new HttpError(400, `${field} is required`, field);
  if (v.length > opts.max) throw new HttpError(400, `${field} is longer than ${opts.max} characters`, field);
  return v;
}

export function bodyInt(body: Record<string, unknown>, field: string, opts: { required: boolean; min: number; max: number; def?: number }): number {
  const v = body[field];
  if (v === undefined || v === null) {
    if (opts.required || opts.def === undefined) throw new HttpError(400, `${field} is required`, field);
    return opts.def;
  }
  if (typeof v !== 'number' || !Number.isInteger(v) || v < opts.min || v > opts.max) throw new HttpError(400, `${field}: expected a whole number from ${opts.min} to ${opts.max}`, field);
  return v;
}

export function bodyBool(body: Record<string, unknown>, field: string): boolean {
  const v = body[field];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw new HttpError(400, `${field}: expected true or false`, field);
  return v;
}

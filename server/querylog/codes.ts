// Small numbers for the hot path and the log, and their names for people. An outcome, a protocol
// and a record type are stored as integers (one byte or two per query); the API turns them back
// into text when it answers.
import type { Outcome } from '../pipeline/types.js';
import { RCODE, TYPE } from '../wire/constants.js';

/** Every outcome, in the order of its code. Adding one at the end keeps stored codes valid. */
export const OUTCOMES: readonly Outcome[] = ['forwarded', 'cached', 'blocked', 'local', 'stale', 'refused', 'servfail', 'special'];
export const OUTCOME_CODE: Readonly<Record<Outcome, number>> = Object.freeze(Object.fromEntries(OUTCOMES.map((o, i) => [o, i])) as Record<Outcome, number>);
export const BLOCKED = OUTCOME_CODE.blocked;

export const PROTOCOLS = ['udp', 'tcp'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** Record types with their own metric label; every other type counts as "other". */
const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(TYPE).map(([name, code]) => [code, name]));
const EXTRA_TYPES: Record<number, string> = { 3: 'MD', 4: 'MF', 10: 'NULL', 11: 'WKS', 35: 'NAPTR', 43: 'DS', 46: 'RRSIG', 47: 'NSEC', 48: 'DNSKEY', 50: 'NSEC3', 52: 'TLSA', 99: 'SPF', 257: 'CAA' };

export function typeName(qtype: number): string {
  return TYPE_NAMES[qtype] ?? EXTRA_TYPES[qtype] ?? `TYPE${qtype}`;
}

/** Index of a type among the labelled ones (0 = other), for fixed-size counters. */
export const LABELLED_TYPES: readonly number[] = [0, ...Object.values(TYPE).filter((t) => t !== TYPE.OPT), 257];
export const TYPE_SLOT = new Uint8Array(0x10000);
LABELLED_TYPES.forEach((t, i) => {
  if (i > 0) TYPE_SLOT[t] = i;
});

const RCODE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(RCODE).map(([name, code]) => [code, name]));

export function rcodeName(rcode: number): string {
  return RCODE_NAMES[rcode] ?? `RCODE${rcode}`;
}

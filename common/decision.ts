// What a compiled table decides for a name, as pure functions over rows: the compiler uses them to
// merge and compress, the server to answer, export to translate. No SQLite here.
//
// A claim is (action, scope, strong). A claim on N covers N, and with subtree scope every name below
// N. Ranks: strong allow 4 > strong block 3 > allow 2 > block 1. The decision for a name is the
// highest-ranked covering claim, from the name's own row (any scope) and from each ancestor's row
// (subtree scope only); the name is blocked iff that claim is a block. Ranks never tie across
// actions, so the order in which claims are seen does not matter; on equal rank the most specific
// row is reported, because it says more about why.
import { SCOPE_MASK, STRONG, STRONG_SELF, Scope } from './schema.js';

export type Action = 'block' | 'allow';
export type ClaimScope = 'exact' | 'subtree';

/** The part of a rule row the decision reads: the encoded claim of each action (0: none). */
export interface ClaimRow {
  block: number;
  allow: number;
}

/** A rule row as the table holds it, with the dotted name and parsed source ids. */
export interface RuleRow extends ClaimRow {
  name: string;
  vendor: string | null;
  /** Ids of the sources that claimed a block on this name (sorted). */
  blockSources: number[];
  /** Ids of the sources that claimed an allow on this name (sorted). */
  allowSources: number[];
}

export const Rank = { None: 0, Block: 1, Allow: 2, StrongBlock: 3, StrongAllow: 4 } as const;

export function rankOf(action: Action, strong: boolean): number {
  return action === 'allow' ? (strong ? Rank.StrongAllow : Rank.Allow) : strong ? Rank.StrongBlock : Rank.Block;
}

/** The encoded value of one claim. */
export function encodeClaim(scope: ClaimScope, strong: boolean): number {
  return (scope === 'subtree' ? Scope.Subtree : Scope.Exact) | (strong ? STRONG : 0);
}

export interface DecodedClaim {
  scope: ClaimScope;
  /** Strong on the name itself. */
  strong: boolean;
  /** Strong below the name (subtree scope only). */
  strongBelow: boolean;
}

/** The claim an encoded value holds, or null for none. */
export function decodeClaim(v: number): DecodedClaim | null {
  const scope = v & SCOPE_MASK;
  if (scope === Scope.None) return null;
  return {
    scope: scope === Scope.Subtree ? 'subtree' : 'exact',
    strong: (v & (STRONG | STRONG_SELF)) !== 0,
    strongBelow: scope === Scope.Subtree && (v & STRONG) !== 0,
  };
}

// Strength of a claim where it applies: 0 none, 1 weak, 2 strong. Tables indexed by the 4-bit value.
const SELF_STRENGTH = new Uint8Array(16);
const BELOW_STRENGTH = new Uint8Array(16);
for (let v = 0; v < 16; v++) {
  const scope = v & SCOPE_MASK;
  SELF_STRENGTH[v] = scope === Scope.None || scope === 3 ? 0 : (v & (STRONG | STRONG_SELF)) !== 0 ? 2 : 1;
  BELOW_STRENGTH[v] = scope === Scope.Subtree ? ((v & STRONG) !== 0 ? 2 : 1) : 0;
}
const BLOCK_RANK_OF_STRENGTH = [Rank.None, Rank.Block, Rank.StrongBlock];
const ALLOW_RANK_OF_STRENGTH = [Rank.None, Rank.Allow, Rank.StrongAllow];

/** Rank a block claim gives the name it sits on. */
export function blockRankSelf(v: number): number {
  return BLOCK_RANK_OF_STRENGTH[SELF_STRENGTH[v & 15]];
}
/** Rank a block claim gives every name below the name it sits on. */
export function blockRankBelow(v: number): number {
  return BLOCK_RANK_OF_STRENGTH[BELOW_STRENGTH[v & 15]];
}
export function allowRankSelf(v: number): number {
  return ALLOW_RANK_OF_STRENGTH[SELF_STRENGTH[v & 15]];
}
export function allowRankBelow(v: number): number {
  return ALLOW_RANK_OF_STRENGTH[BELOW_STRENGTH[v & 15]];
}

/**
 * Two claims of the same action on the same name as one value, losing nothing: exact + subtree is
 * subtree; a strong exact claim with a weak subtree claim stays strong on the name only
 * (STRONG_SELF), so the strong claim never spreads to names below that only the weak one covered.
 */
export function mergeClaims(a: number, b: number): number {
  const self = Math.max(SELF_STRENGTH[a & 15], SELF_STRENGTH[b & 15]);
  const below = Math.max(BELOW_STRENGTH[a & 15], BELOW_STRENGTH[b & 15]);
  if (below === 2) return Scope.Subtree | STRONG;
  if (below === 1) return self === 2 ? Scope.Subtree | STRONG_SELF : Scope.Subtree;
  return self === 2 ? Scope.Exact | STRONG : self === 1 ? Scope.Exact : 0;
}

export interface Decision<R extends ClaimRow = RuleRow> {
  action: Action | 'none';
  rank: number;
  /** The claim that decided: the row it sits on and how it covers the queried name. */
  matched?: { name: string; scope: ClaimScope; strong: boolean; row: R };
}

export const NO_DECISION: Decision<never> = Object.freeze({ action: 'none', rank: Rank.None });

/**
 * The decision for `name` (lowercase, no trailing dot). `lookup` is asked for the name and then each
 * parent, most specific first (the order of `nameAndParents`); `offset` is where the candidate
 * starts inside `name`, so a caller can derive keys without re-splitting. Stops early once nothing
 * can outrank what was found.
 */
export function decide<R extends ClaimRow>(name: string, lookup: (candidate: string, offset: number) => R | undefined): Decision<R> {
  let best = 0;
  let bestRow: R | undefined;
  let bestOffset = 0;
  let bestAction: Action = 'block';
  let offset = 0;
  let candidate = name;
  for (;;) {
    const row = lookup(candidate, offset);
    if (row !== undefined) {
      const self = offset === 0;
      const rb = self ? blockRankSelf(row.block) : blockRankBelow(row.block);
      const ra = self ? allowRankSelf(row.allow) : allowRankBelow(row.allow);
      if (rb > best) {
        best = rb;
        bestRow = row;
        bestOffset = offset;
        bestAction = 'block';
      }
      if (ra > best) {
        best = ra;
        bestRow = row;
        bestOffset = offset;
        bestAction = 'allow';
      }
      if (best === Rank.StrongAllow) break;
    }
    const dot = name.indexOf('.', offset);
    if (dot === -1) break;
    offset = dot + 1;
    candidate = name.slice(offset);
  }
  if (bestRow === undefined) return NO_DECISION;
  const v = bestAction === 'block' ? bestRow.block : bestRow.allow;
  const strong = best === Rank.StrongAllow || best === Rank.StrongBlock;
  return {
    action: bestAction,
    rank: best,
    matched: {
      name: bestOffset === 0 ? name : name.slice(bestOffset),
      scope: matchedScope(v, bestOffset === 0, strong),
      strong,
      row: bestRow,
    },
  };
}

/**
 * How a claim covered the name: an ancestor's claim is always a subtree claim; on the name itself a
 * STRONG_SELF value decided strongly through its exact part.
 */
function matchedScope(v: number, self: boolean, strong: boolean): ClaimScope {
  if (!self) return 'subtree';
  if ((v & SCOPE_MASK) !== Scope.Subtree) return 'exact';
  return strong && (v & STRONG) === 0 ? 'exact' : 'subtree';
}

/** True when `key` (a tree key) lies strictly below `ancestorKey`. */
export function isBelowKey(key: string, ancestorKey: string): boolean {
  return key.length > ancestorKey.length && key.charCodeAt(ancestorKey.length) === 1 && key.startsWith(ancestorKey);
}

/**
 * The ancestors of the current row during a walk in tree order (a parent sorts directly before its
 * descendants), with the highest rank their subtree claims give names below them. Used by the
 * compiler's compress pass and by export, which both see each row once, in key order.
 */
export class AncestorStack {
  private readonly keys: string[] = [];
  private readonly blockBelow: number[] = [];
  private readonly allowBelow: number[] = [];
  /** A free slot per level for the caller (export keeps what it wrote there). */
  private readonly tags: number[] = [];
  private depth = 0;

  /** Moves to `key`: forgets the rows that are not its ancestors. */
  enter(key: string): void {
    while (this.depth > 0 && !isBelowKey(key, this.keys[this.depth - 1])) this.depth--;
  }

  /** The highest block rank the current ancestors give the entered row. */
  get inheritedBlock(): number {
    return this.depth === 0 ? 0 : this.blockBelow[this.depth - 1];
  }

  get inheritedAllow(): number {
    return this.depth === 0 ? 0 : this.allowBelow[this.depth - 1];
  }

  /** The tag of the nearest ancestor, or `fallback` at the top. */
  inheritedTag(fallback: number): number {
    return this.depth === 0 ? fallback : this.tags[this.depth - 1];
  }

  /** Makes the entered row an ancestor for what follows. */
  push(key: string, block: number, allow: number, tag = 0): void {
    const d = this.depth;
    this.keys[d] = key;
    this.blockBelow[d] = Math.max(this.inheritedBlock, blockRankBelow(block));
    this.allowBelow[d] = Math.max(this.inheritedAllow, allowRankBelow(allow));
    this.tags[d] = tag;
    this.depth = d + 1;
  }
}

/**
 * `treeSortKey(name)` (common/names.ts) without the intermediate arrays: the compiler computes one
 * per list entry, millions per compile. Same output, checked by the tests. Names are written into
 * a scratch buffer and read back as one flat string: a key built by `+=` is a rope that every later
 * reader (the Bloom filter's hash, SQLite's binding) has to flatten first.
 */
export function treeKey(name: string): string {
  const n = name.length;
  if (n > KEY_SCRATCH.length) return treeKeyByConcat(name);
  let out = 0;
  let end = n;
  for (let i = n - 1; i >= -1; i--) {
    if (i !== -1 && name.charCodeAt(i) !== 0x2e) continue;
    for (let j = i + 1; j < end; j++) {
      const c = name.charCodeAt(j);
      if (c > 0xff) return treeKeyByConcat(name);
      KEY_SCRATCH[out++] = c;
    }
    if (i !== -1) KEY_SCRATCH[out++] = 1;
    end = i;
  }
  // latin1Slice is what toString('latin1') calls after its argument checks; this runs once per list entry.
  return KEY_SCRATCH.latin1Slice(0, out);
}

/** Longest name the fast path takes (names are at most 253 characters; the rest is for callers that pass anything). */
const KEY_SCRATCH = Buffer.allocUnsafe(1024) as Buffer & { latin1Slice(start: number, end: number): string };

function treeKeyByConcat(name: string): string {
  let end = name.length;
  let i = name.lastIndexOf('.');
  if (i === -1) return name;
  let out = '';
  while (i !== -1) {
    out += name.slice(i + 1, end) + '\u0001';
    end = i;
    i = i === 0 ? -1 : name.lastIndexOf('.', i - 1);
  }
  return out + name.slice(0, end);
}

/** The dotted name of a tree key (the inverse of `treeKey`). */
export function nameOfKey(key: string): string {
  let end = key.length;
  let i = key.lastIndexOf('\u0001');
  if (i === -1) return key;
  let out = '';
  while (i !== -1) {
    out += key.slice(i + 1, end) + '.';
    end = i;
    i = i === 0 ? -1 : key.lastIndexOf('\u0001', i - 1);
  }
  return out + key.slice(0, end);
}

// One list file into the writer: detect the format when it is not declared, parse line by line,
// normalise, filter (exclusions, inclusions, canary guard) and hand the survivors to the writer,
// counting everything that was left out and why. Streams the file; holds one chunk of lines.
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { lastTwoLabelsHash, normaliseName } from '../common/names.js';
import type { VendorCatalog } from '../common/vendors.js';
import { splitLineBatches, splitLinesSync, TOO_LONG_LINE } from './lines.js';
import { allowListParser, curatedParser } from './parse/curated.js';
import { DETECT_SAMPLE_LINES, detectFormat, parserFor } from './parse/index.js';
import type { SourceFormat, SourceSpec } from './sources.js';
import type { EntryFilter } from './transforms/filter.js';
import type { LineParser, ParsedLine } from './types.js';
import type { BlocklistWriter } from './write-db.js';

/** What reading one copy of a list gave. */
export interface ListCounts {
  /** The format read (declared or detected); null when it could not be told. */
  format: SourceFormat | null;
  /** Rules handed to the writer. */
  entries: number;
  /** Patterns handed to the writer. */
  patterns: number;
  invalid: number;
  invalidByReason: Record<string, number>;
  unsupported: number;
  unsupportedByReason: Record<string, number>;
  excluded: number;
  /** Entries that matched no inclusion. */
  notIncluded: number;
  /** Special names the list tried to decide (DoH canary, Private Relay, DDR); never written. */
  canary: string[];
  /** Block patterns that also matched special names, stored with a guard that spares them. */
  canaryPatterns: string[];
  /** Valid rules and patterns before filtering: how much list there was (the usability check). */
  valid: number;
  /** Why the copy could not be read (format unknown, I/O error); null when it was. */
  error: string | null;
}

export interface ListContext {
  writer: BlocklistWriter;
  sourceId: number;
  spec: SourceSpec;
  level: 'standard' | 'strict';
  filter: EntryFilter;
  vendors: VendorLookup;
}

export function emptyCounts(format: SourceFormat | null): ListCounts {
  return {
    format,
    entries: 0,
    patterns: 0,
    invalid: 0,
    invalidByReason: {},
    unsupported: 0,
    unsupportedByReason: {},
    excluded: 0,
    notIncluded: 0,
    canary: [],
    canaryPatterns: [],
    valid: 0,
    error: null,
  };
}

export async function readList(path: string, ctx: ListContext): Promise<ListCounts> {
  const { spec, writer, sourceId, filter } = ctx;
  const counts = emptyCounts(spec.format);
  try {
    counts.format ??= detectFormat(await sampleLines(path));
  } catch (err) {
    counts.error = `reading ${path}: ${(err as Error).message}`;
    return counts;
  }
  const format = counts.format;
  if (format === null) {
    const where = spec.url ?? spec.path ?? path;
    counts.error = `cannot tell the format of ${where}; declare it, e.g. --source ${where}#hosts`;
    return counts;
  }
  // A parser per read: curated and rpz parsers keep state across lines.
  const parse: LineParser = format === 'curated' ? curatedParser(ctx.level) : format === 'allowlist' ? allowListParser() : parserFor(format);
  const widen = spec.match === 'subtree';
  const actionOverride = spec.action;
  const vendor = spec.vendor;
  const vendors = ctx.vendors;

  const consume = (item: ParsedLine): void => {
    switch (item.kind) {
      case 'skip':
        return;
      case 'invalid':
        count(counts.invalidByReason, item.reason);
        counts.invalid++;
        return;
      case 'unsupported':
        count(counts.unsupportedByReason, item.reason);
        counts.unsupported++;
        return;
      case 'pattern': {
        counts.valid++;
        const action = actionOverride ?? item.action;
        const kept = filter.pattern(item.patternKind, item.pattern, action);
        if (kept === 'excluded') counts.excluded++;
        else if (kept === 'not-included') counts.notIncluded++;
        else {
          if (kept.guarded.length > 0) counts.canaryPatterns.push(`${item.pattern} (${kept.guarded.join(', ')})`);
          writer.addPattern(kept.kind, kept.pattern, action, sourceId);
          counts.patterns++;
        }
        return;
      }
      case 'rule': {
        const n = normaliseName(item.name);
        if (!n.ok) {
          count(counts.invalidByReason, n.reason);
          counts.invalid++;
          return;
        }
        counts.valid++;
        const name = n.name;
        const tail = lastTwoLabelsHash(name);
        const dropped = filter.rule(name, tail);
        if (dropped !== null) {
          if (dropped === 'excluded') counts.excluded++;
          else if (dropped === 'not-included') counts.notIncluded++;
          else if (!counts.canary.includes(name)) counts.canary.push(name);
          return;
        }
        const scope = widen && item.scope === 'exact' ? 'subtree' : item.scope;
        // The catalog knows whose a name is (an SDK's host in a Xiaomi list is still the SDK's); a
        // list's own vendor fills in for names the catalog does not know.
        writer.addRule(name, actionOverride ?? item.action, scope, item.important === true, sourceId, vendors(name, tail) ?? vendor);
        counts.entries++;
      }
    }
  };

  try {
    for await (const lines of splitLineBatches(createReadStream(path))) {
      for (let i = 0; i < lines.length; i++) {
        const line = lines[i]!;
        if (line === TOO_LONG_LINE) {
          count(counts.invalidByReason, 'line-too-long');
          counts.invalid++;
          continue;
        }
        const parsed = parse(line);
        if (Array.isArray(parsed)) for (const p of parsed) consume(p);
        else consume(parsed);
      }
    }
  } catch (err) {
    counts.error = `reading ${path}: ${(err as Error).message}`;
  }
  return counts;
}

function count(byReason: Record<string, number>, reason: string): void {
  byReason[reason] = (byReason[reason] ?? 0) + 1;
}

async function sampleLines(path: string): Promise<string[]> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(64 * 1024);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return splitLinesSync(buf.subarray(0, bytesRead).toString('utf8'))
      .filter((l) => l.trim() !== '')
      .slice(0, DETECT_SAMPLE_LINES);
  } finally {
    await fh.close();
  }
}

/** The vendor id of a name (vendor catalog, longest suffix) whose lastTwoLabelsHash is `tail`, or null. Hot: once per list entry. */
export type VendorLookup = (name: string, tail: number) => string | null;

/**
 * catalog.vendorOf with a quick miss: every vendor suffix has at least two labels, so a name whose
 * last two labels end no suffix belongs to no vendor, which is what almost every name of a big
 * public list is. That test hashes the last two labels in place, and only a hash that some suffix
 * shares leads to the real lookup.
 */
export function vendorLookup(catalog: VendorCatalog): VendorLookup {
  const tails = new Set<number>();
  for (const v of catalog.vendors) {
    for (const s of v.suffixes) {
      if (!s.includes('.')) return (name) => catalog.vendorOf(name)?.id ?? null;
      tails.add(lastTwoLabelsHash(s));
    }
  }
  return (name, tail) => (tails.has(tail) ? (catalog.vendorOf(name)?.id ?? null) : null);
}

// The DNS thread's side of the query log: a bounded column buffer. record() writes a few numbers
// into typed arrays and looks strings up in one Map (names, clients, reasons repeat); no objects,
// no JSON per query. The buffer grows by doubling up to its capacity (a quiet home never holds
// the full-rate buffer) and halves again after a few quiet batches (a burst does not keep it),
// 37 bytes per row. When it is full the query is dropped from the log and
// counted: DNS never waits for the log. cut() hands the rows over as a Batch.
import { createHmac, randomBytes } from 'node:crypto';
import { parseIp } from '../../common/config.js';
import { ClientAcl } from '../acl.js';
import type { BlockDecision } from '../blocklist.js';
import type { Answer, Query } from '../pipeline/types.js';
import { BLOCKED, OUTCOME_CODE } from './codes.js';
import { MinuteRate } from './rate.js';
import type { Batch, BlockReason } from './types.js';

export type Anonymise = 'off' | 'truncate' | 'hash';

export interface RecorderOptions {
  capacity: number;
  anonymise: Anonymise;
  /** Addresses or ranges never logged. */
  excludeClients: readonly string[];
  /** Names never logged: the name and its subdomains; `=name` for the name only. */
  excludeNames: readonly string[];
  /** The decision behind a block right now, to learn which rule and lists a new block reason stands for. */
  describeBlock?: (name: string) => BlockDecision | null;
  /**
   * Distinct strings remembered before the table starts over (between batches), and new strings
   * one batch may bring before it is written early; a batch holds at most twice this many, and
   * queries beyond that are dropped and counted like those beyond the capacity.
   */
  maxStrings?: number;
}

const DEFAULT_MAX_STRINGS = 50_000;
/** A batch's new strings stop at this many times maxStrings: every query a new name (a flood) would otherwise hold a string or two per row for a whole interval. */
const BATCH_STRINGS_FACTOR = 2;
/** Rows the buffer starts with; it doubles up to the capacity as traffic needs. */
const INITIAL_ROWS = 4096;
/** Consecutive batches using under a quarter of the buffer before it halves (not below INITIAL_ROWS). */
const SHRINK_AFTER_CUTS = 4;
/** Bytes a buffered row takes: time 8, client/name/reason/vendor/upstream/us 4 each, qtype 2, flags 1, rcode 2. */
export const BYTES_PER_ROW = 8 + 6 * 4 + 2 + 1 + 2;

export class Recorder {
  readonly capacity: number;
  /** Rows waiting for the writer. */
  length = 0;
  dropped = 0;
  excluded = 0;
  /** Queries per minute (logged or dropped, not excluded). */
  readonly rate = new MinuteRate();
  /** Batches in a row that used under a quarter of the buffer. */
  private quietCuts = 0;
  private time: Float64Array;
  private client: Int32Array;
  private name: Int32Array;
  private reason: Int32Array;
  private vendor: Int32Array;
  private upstream: Int32Array;
  private qtype: Uint16Array;
  private flags: Uint8Array;
  private rcode: Uint16Array;
  private us: Uint32Array;

  private readonly ids = new Map<string, number>();
  private readonly clientIds = new Map<string, number>();
  private texts: string[] = [];
  private base = 0;
  private reset = false;
  private reasons: BlockReason[] = [];
  private readonly maxStrings: number;
  private readonly maxBatchStrings: number;
  private readonly excludeAcl: ClientAcl | null;
  private readonly excludeExact: Set<string>;
  private readonly excludeTree: Set<string>;
  private readonly anonymiseClient: ((address: string) => string) | null;
  private readonly describeBlock: ((name: string) => BlockDecision | null) | null;

  constructor(opts: RecorderOptions) {
    this.capacity = opts.capacity;
    const c = Math.min(opts.capacity, INITIAL_ROWS);
    this.time = new Float64Array(c);
    this.client = new Int32Array(c);
    this.name = new Int32Array(c);
    this.reason = new Int32Array(c);
    this.vendor = new Int32Array(c);
    this.upstream = new Int32Array(c);
    this.qtype = new Uint16Array(c);
    this.flags = new Uint8Array(c);
    this.rcode = new Uint16Array(c);
    this.us = new Uint32Array(c);
    this.maxStrings = opts.maxStrings ?? DEFAULT_MAX_STRINGS;
    this.maxBatchStrings = this.maxStrings * BATCH_STRINGS_FACTOR;
    this.excludeAcl = opts.excludeClients.length > 0 ? new ClientAcl(opts.excludeClients) : null;
    this.excludeExact = new Set(opts.excludeNames.filter((n) => n.startsWith('=')).map((n) => n.slice(1).toLowerCase().replace(/\.$/, '')));
    this.excludeTree = new Set(opts.excludeNames.filter((n) => !n.startsWith('=')).map((n) => n.toLowerCase().replace(/^\*\./, '').replace(/\.$/, '')));
    this.anonymiseClient = opts.anonymise === 'truncate' ? truncateAddress : opts.anonymise === 'hash' ? pseudonymiser() : null;
    this.describeBlock = opts.describeBlock ?? null;
  }

  /** Rows the buffer holds room for now (grows with traffic up to the capacity, shrinks when it is quiet). */
  get allocatedRows(): number {
    return this.time.length;
  }

  /** The batch being recorded has brought maxStrings new strings: write it now rather than at the interval. */
  get stringsFull(): boolean {
    return this.texts.length >= this.maxStrings;
  }

  /** Hot path. Returns false when the query was dropped because the buffer is full. */
  record(query: Query, answer: Answer, ms: number): boolean {
    const name = query.q.name;
    if ((this.excludeAcl !== null && this.excludeAcl.allows(query.client.address)) || ((this.excludeExact.size > 0 || this.excludeTree.size > 0) && this.isExcludedName(name))) {
      this.excluded++;
      return true;
    }
    const now = Date.now();
    this.rate.tick(now);
    const i = this.length;
    if ((i >= this.time.length && !this.grow()) || this.texts.length >= this.maxBatchStrings) {
      this.dropped++;
      return false;
    }
    const outcome = OUTCOME_CODE[answer.outcome] ?? OUTCOME_CODE.servfail;
    this.time[i] = now;
    this.client[i] = this.clientId(query.client.address);
    this.name[i] = this.intern(name);
    // An answer an allow rule let through is logged with that rule as its reason (the upstream
    // has its own column), so allow rules and allow lists get their hits.
    const allow = answer.allowedBy;
    const reason = allow ? allow.reason : answer.reason;
    if (reason) {
      const before = this.base + this.texts.length;
      const id = this.intern(reason);
      this.reason[i] = id;
      if (id >= before) {
        if (allow) this.reasons.push({ reason: id, rule: allow.reason, lists: allow.sources.slice(), action: 'allow' });
        else if (outcome === BLOCKED) this.noteBlockReason(id, reason, name);
      }
    } else this.reason[i] = -1;
    this.vendor[i] = answer.vendor ? this.intern(answer.vendor) : -1;
    this.upstream[i] = answer.upstream ? this.intern(answer.upstream) : -1;
    this.qtype[i] = query.q.qtype;
    this.flags[i] = outcome | (query.protocol === 'tcp' ? 8 : 0);
    this.rcode[i] = answer.rcode;
    this.us[i] = ms >= 4_000_000 ? 0xffffffff : Math.round(ms * 1000);
    this.length = i + 1;
    return true;
  }

  /** Queries another recorder (a worker process's) dropped or excluded: counted here, dropped ones in the rate too. */
  countElsewhere(dropped: number, excluded: number): void {
    if (dropped > 0) {
      this.dropped += dropped;
      this.rate.tick(Date.now(), dropped);
    }
    this.excluded += excluded;
  }

  /**
   * Rows another recorder took (a worker process's), with their strings as text: re-interned here,
   * clients anonymised here (workers log them as they are), block reasons carried over.
   */
  append(batch: Batch, strings: BatchStrings): void {
    strings.take(batch);
    this.rate.tick(Date.now(), batch.n);
    for (let r = 0; r < batch.n; r++) {
      const i = this.length;
      if ((i >= this.time.length && !this.grow()) || this.texts.length >= this.maxBatchStrings) {
        this.dropped += batch.n - r;
        return;
      }
      this.time[i] = batch.time[r];
      this.client[i] = this.clientId(strings.text(batch.client[r]) ?? 'unknown');
      this.name[i] = this.intern(strings.text(batch.name[r]) ?? '');
      const reasonId = batch.reason[r];
      const reason = strings.text(reasonId);
      if (reason !== null) {
        const before = this.base + this.texts.length;
        const id = this.intern(reason);
        this.reason[i] = id;
        const info = id >= before ? strings.reasonInfo(reasonId) : undefined;
        if (info) this.reasons.push({ ...info, reason: id });
      } else this.reason[i] = -1;
      const vendor = strings.text(batch.vendor[r]);
      this.vendor[i] = vendor === null ? -1 : this.intern(vendor);
      const upstream = strings.text(batch.upstream[r]);
      this.upstream[i] = upstream === null ? -1 : this.intern(upstream);
      this.qtype[i] = batch.qtype[r];
      this.flags[i] = batch.flags[r];
      this.rcode[i] = batch.rcode[r];
      this.us[i] = batch.us[r];
      this.length = i + 1;
    }
  }

  /** The rows so far as a Batch (copied out, so the buffer is free for the next ones). */
  cut(): Batch {
    const n = this.length;
    const batch: Batch = {
      n,
      time: this.time.slice(0, n),
      client: this.client.slice(0, n),
      name: this.name.slice(0, n),
      reason: this.reason.slice(0, n),
      vendor: this.vendor.slice(0, n),
      upstream: this.upstream.slice(0, n),
      qtype: this.qtype.slice(0, n),
      flags: this.flags.slice(0, n),
      rcode: this.rcode.slice(0, n),
      us: this.us.slice(0, n),
      strings: { reset: this.reset, base: this.base, texts: this.texts },
      reasons: this.reasons,
    };
    this.length = 0;
    this.reset = false;
    this.base += this.texts.length;
    this.texts = [];
    this.reasons = [];
    // Start the string table over between batches, never inside one, so every id in a batch
    // means what the writer was told.
    if (this.ids.size + this.clientIds.size >= this.maxStrings) {
      this.ids.clear();
      this.clientIds.clear();
      this.base = 0;
      this.reset = true;
    }
    this.shrinkWhenQuiet(n);
    return batch;
  }

  /** Doubles the arrays (up to the capacity); false when they are at the capacity already. */
  private grow(): boolean {
    const size = this.time.length;
    if (size >= this.capacity) return false;
    this.resize(Math.min(this.capacity, size * 2));
    return true;
  }

  /**
   * After SHRINK_AFTER_CUTS batches in a row of under a quarter of the buffer, halves it (not
   * below INITIAL_ROWS): a burst grows the buffer, quiet traffic gives the memory back. Called by
   * cut(), when the arrays hold no rows.
   */
  private shrinkWhenQuiet(used: number): void {
    const size = this.time.length;
    if (size <= INITIAL_ROWS || used * 4 >= size) {
      this.quietCuts = 0;
      return;
    }
    if (++this.quietCuts < SHRINK_AFTER_CUTS) return;
    this.quietCuts = 0;
    this.resize(Math.max(INITIAL_ROWS, Math.floor(size / 2)));
  }

  /** New arrays of `n` rows holding the rows buffered so far. */
  private resize(n: number): void {
    const rows = this.length;
    const to = <T extends Float64Array | Int32Array | Uint32Array | Uint16Array | Uint8Array>(a: T, make: (n: number) => T): T => {
      const b = make(n);
      if (rows > 0) b.set(a.subarray(0, rows));
      return b;
    };
    this.time = to(this.time, (k) => new Float64Array(k));
    this.client = to(this.client, (k) => new Int32Array(k));
    this.name = to(this.name, (k) => new Int32Array(k));
    this.reason = to(this.reason, (k) => new Int32Array(k));
    this.vendor = to(this.vendor, (k) => new Int32Array(k));
    this.upstream = to(this.upstream, (k) => new Int32Array(k));
    this.qtype = to(this.qtype, (k) => new Uint16Array(k));
    this.flags = to(this.flags, (k) => new Uint8Array(k));
    this.rcode = to(this.rcode, (k) => new Uint16Array(k));
    this.us = to(this.us, (k) => new Uint32Array(k));
  }

  private intern(text: string): number {
    const known = this.ids.get(text);
    if (known !== undefined) return known;
    const id = this.base + this.texts.length;
    this.texts.push(text);
    this.ids.set(text, id);
    return id;
  }

  private clientId(address: string): number {
    const known = this.clientIds.get(address);
    if (known !== undefined) return known;
    const id = this.intern(this.anonymiseClient ? this.anonymiseClient(address) : address);
    this.clientIds.set(address, id);
    return id;
  }

  /** First sight of a block reason: ask which rule and lists it stands for (once per reason, not per query). */
  private noteBlockReason(id: number, reason: string, name: string): void {
    if (!this.describeBlock) return;
    // A CNAME block names the target the rule matched: "CNAME <target>: <rule> (<lists>)".
    let subject = name;
    let expected = reason;
    if (reason.startsWith('CNAME ')) {
      const colon = reason.indexOf(': ');
      if (colon > 6) {
        subject = reason.slice(6, colon);
        expected = reason.slice(colon + 2);
      }
    }
    let d: BlockDecision | null = null;
    try {
      d = this.describeBlock(subject);
    } catch {
      d = null;
    }
    if (d && d.action === 'block' && d.reason === expected) this.reasons.push({ reason: id, rule: d.reason, lists: d.sources.slice(), action: 'block' });
  }

  private isExcludedName(name: string): boolean {
    if (this.excludeExact.has(name)) return true;
    if (this.excludeTree.size === 0) return false;
    let i = 0;
    for (;;) {
      if (this.excludeTree.has(i === 0 ? name : name.slice(i))) return true;
      const dot = name.indexOf('.', i);
      if (dot === -1) return false;
      i = dot + 1;
    }
  }
}

/** IPv4 to its /24, IPv6 to its /56: the household stays, the device goes. */
export function truncateAddress(address: string): string {
  const b = parseIp(address);
  if (!b) return 'unknown';
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.0/24`;
  const isMapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  if (isMapped) return `${b[12]}.${b[13]}.${b[14]}.0/24`;
  const words: string[] = [];
  for (let i = 0; i < 8; i += 2) words.push(((b[i] << 8) | (i === 6 ? b[i + 1] & 0 : b[i + 1])).toString(16));
  return `${words.join(':')}::/56`;
}

/** A keyed hash with a key that lives only in this process: pseudonyms cannot be reversed from the log, and change at every restart. */
function pseudonymiser(): (address: string) => string {
  const key = randomBytes(32);
  return (address) => `client-${createHmac('sha256', key).update(address).digest('hex').slice(0, 10)}`;
}

/**
 * The string table of one producer (a worker process's recorder) as its batches reveal it: the
 * texts behind its session ids, and what its block and allow reasons stand for.
 */
export class BatchStrings {
  private texts: string[] = [];
  private readonly reasons = new Map<number, BlockReason>();

  /** Learns the strings and reasons a batch introduces (call before reading its rows). */
  take(batch: Batch): void {
    if (batch.strings.reset) {
      this.texts = [];
      this.reasons.clear();
    }
    const { base, texts } = batch.strings;
    for (let k = 0; k < texts.length; k++) this.texts[base + k] = texts[k];
    for (const r of batch.reasons) this.reasons.set(r.reason, r);
  }

  text(id: number): string | null {
    return id < 0 ? null : (this.texts[id] ?? null);
  }

  reasonInfo(id: number): BlockReason | undefined {
    return this.reasons.get(id);
  }
}

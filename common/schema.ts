// The compiled blocklist contract between `hushdns compile` (writer) and `hushdns serve` (reader).
// Bump SCHEMA_VERSION on any change the reader would misread; the server refuses other versions.
// The writer is compiler/write-db.ts, the reader server/blocklist.ts, the rules both follow
// common/decision.ts; nothing else should touch the file with SQL.

export const SCHEMA_VERSION = 2;

/**
 * A row's claim for one action, one small integer per action (rule.block, rule.allow):
 * - bits 0-1, the scope: 0 none, 1 exact (the name only), 2 subtree (the name and every name below);
 * - STRONG: the claim is strong (adblock `$important` blocks, the user's own entries) over its
 *   whole scope;
 * - STRONG_SELF: a subtree claim that is strong on the name itself only (a strong exact claim and a
 *   weak subtree claim on the same name, merged without losing either).
 * Decision order, strongest first: strong allow > strong block > allow > block.
 */
export const Scope = { None: 0, Exact: 1, Subtree: 2 } as const;
export type ScopeValue = (typeof Scope)[keyof typeof Scope];
export const SCOPE_MASK = 3;
export const STRONG = 4;
export const STRONG_SELF = 8;

/**
 * Rules are keyed by the name's tree key (`treeSortKey` in common/names.ts: labels reversed, joined
 * by U+0001), not by the dotted name: the compiler's merge and compress pass runs in tree order, so
 * keying the table the same way lets it append rows in key order (one sort, no random B-tree
 * inserts, full pages) and puts a domain's subtree in one contiguous key range for export. A key
 * has the same length as its name, and the key of a parent is a prefix of the child's key.
 */
export const SCHEMA_SQL = `
CREATE TABLE source (
  id INTEGER PRIMARY KEY,
  name TEXT UNIQUE NOT NULL,
  url TEXT,
  format TEXT,
  vendor TEXT,
  category TEXT,
  license TEXT,
  status TEXT NOT NULL,          -- fresh | not-modified | stale | failed | local
  fetched_at INTEGER,            -- unix ms of the copy that was used
  etag TEXT,
  last_modified TEXT,
  sha256 TEXT,
  entries INTEGER NOT NULL DEFAULT 0,   -- rules this source contributed (before dedupe)
  invalid INTEGER NOT NULL DEFAULT 0,   -- lines rejected
  unsupported INTEGER NOT NULL DEFAULT 0, -- lines DNS cannot express (cosmetic, paths, options)
  detail TEXT,                   -- JSON: rejections by reason, warnings
  error TEXT
);
-- One row per name, after compress: a claim is left out when an ancestor's subtree claim of the
-- same action gives the name at least the same rank (so the decision for the name and everything
-- below it is unchanged); a name left with no claim has no row. block/allow hold the merged claim of each action (see Scope,
-- STRONG, STRONG_SELF); block_sources/allow_sources list the ids of the sources that made each
-- claim (sorted, comma separated, NULL when none), so "which list blocked this?" is answered by
-- the row that decided, without crediting an allow list for a block.
CREATE TABLE rule (
  key TEXT PRIMARY KEY,          -- treeSortKey(name)
  block INTEGER NOT NULL,
  allow INTEGER NOT NULL,
  vendor TEXT,
  block_sources TEXT,
  allow_sources TEXT
) WITHOUT ROWID;
-- Rules a suffix table cannot hold: Pi-hole regexes and globs inside labels (*.ads*.example.com).
-- A glob is matched against the whole name: '*' stands for any run of characters, dots included,
-- and a leading '*.' also matches the rest of the pattern itself (compiler/parse/common.ts).
CREATE TABLE pattern (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,            -- regex | glob
  pattern TEXT NOT NULL,
  action INTEGER NOT NULL,       -- 0 block, 1 allow
  source_id INTEGER NOT NULL,
  UNIQUE (kind, pattern, action, source_id)
);
-- A Bloom filter over rule.key (common/bloom.ts) so the server answers most names without touching
-- SQLite.
CREATE TABLE bloom (id INTEGER PRIMARY KEY CHECK (id = 1), bits BLOB NOT NULL, hashes INTEGER NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
`;

/** Keys in the meta table. */
export const Meta = {
  SchemaVersion: 'schema_version',
  BuiltAt: 'built_at', // unix ms
  CompilerVersion: 'compiler_version',
  /** Rule rows in the table (after compress). */
  Rules: 'rules',
  Patterns: 'patterns',
  Sources: 'sources',
  /** addRule calls that reached the writer. */
  Entries: 'entries',
  /** Entries that named a name another entry had already named. */
  Duplicates: 'duplicates',
  /** Names not written: an ancestor's subtree claims of the same action decide the same for them and below. */
  Compressed: 'compressed',
} as const;

export const BLOCKLIST_FILE = 'blocklist.sqlite';
export const BLOCKLIST_PREV_FILE = 'blocklist.prev.sqlite';

// The compiled blocklist contract between `hushdns compile` (writer) and `hushdns serve` (reader).
// Bump SCHEMA_VERSION on any change the reader would misread; the server refuses other versions.

export const SCHEMA_VERSION = 1;

/**
 * A rule's claim on a name, one small integer per action: the low two bits are the scope,
 * bit 2 marks a strong claim (adblock `$important` blocks, the user's own entries).
 * Decision order, strongest first: strong allow > strong block > allow > block.
 */
export const Scope = { None: 0, Exact: 1, Subtree: 2 } as const;
export type ScopeValue = (typeof Scope)[keyof typeof Scope];
export const SCOPE_MASK = 3;
export const STRONG = 4;

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
-- One row per name. block/allow hold the strongest claim of each action (see Scope, STRONG);
-- sources lists every source id that claimed this name, comma separated, so "which list blocked
-- this?" is always answerable with one row read.
CREATE TABLE rule (
  name TEXT PRIMARY KEY,
  block INTEGER NOT NULL,
  allow INTEGER NOT NULL,
  vendor TEXT,
  sources TEXT NOT NULL
) WITHOUT ROWID;
-- Rules a suffix table cannot hold: Pi-hole regexes and globs inside labels (*.ads*.example.com).
CREATE TABLE pattern (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,            -- regex | glob
  pattern TEXT NOT NULL,
  action INTEGER NOT NULL,       -- 0 block, 1 allow
  source_id INTEGER NOT NULL,
  UNIQUE (kind, pattern, action, source_id)
);
-- A Bloom filter over rule.name so the server answers most names without touching SQLite.
CREATE TABLE bloom (id INTEGER PRIMARY KEY CHECK (id = 1), bits BLOB NOT NULL, hashes INTEGER NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
`;

/** Keys in the meta table. */
export const Meta = {
  SchemaVersion: 'schema_version',
  BuiltAt: 'built_at', // unix ms
  CompilerVersion: 'compiler_version',
  Rules: 'rules',
  Patterns: 'patterns',
  Sources: 'sources',
} as const;

export const BLOCKLIST_FILE = 'blocklist.sqlite';
export const BLOCKLIST_PREV_FILE = 'blocklist.prev.sqlite';

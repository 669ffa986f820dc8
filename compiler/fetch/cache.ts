// The fetch cache: per source id one body file (always a complete, validated list: it only
// ever appears by renaming a finished temp file over it) and one JSON sidecar describing it.
import { randomBytes } from 'node:crypto';
import { open, readFile, readdir, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';

export interface Sidecar {
  version: 1;
  id: string;
  url: string;
  etag?: string;
  lastModified?: string;
  sha256: string;
  bytes: number;
  /** when this body was downloaded (unix ms) */
  fetchedAt: number;
  /** when the server last confirmed it (200 or 304) */
  checkedAt: number;
}

export interface CachedCopy {
  bodyPath: string;
  bytes: number;
  /** null when the sidecar is missing, unreadable or describes another body (a crash between the two renames) */
  meta: Sidecar | null;
}

export interface CachePaths {
  body: string;
  sidecar: string;
}

const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function isSafeId(id: string): boolean {
  return SAFE_ID.test(id);
}

export function cachePaths(cacheDir: string, id: string): CachePaths {
  return { body: join(cacheDir, `${id}.txt`), sidecar: join(cacheDir, `${id}.json`) };
}

/** A fresh temp name beside `path`; every temp file ends in `.tmp` so leftovers can be swept. */
export function tempPathFor(path: string): string {
  return `${path}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`;
}

export async function readCache(paths: CachePaths): Promise<CachedCopy | null> {
  let bytes: number;
  try {
    const st = await stat(paths.body);
    if (!st.isFile()) return null;
    bytes = st.size;
  } catch {
    return null;
  }
  let meta: Sidecar | null = null;
  try {
    const parsed = JSON.parse(await readFile(paths.sidecar, 'utf8')) as Partial<Sidecar>;
    if (parsed.version === 1 && typeof parsed.url === 'string' && parsed.bytes === bytes && typeof parsed.sha256 === 'string') {
      meta = parsed as Sidecar;
    }
  } catch {
    // No usable sidecar: the body is still a good list, we just know less about it.
  }
  return { bodyPath: paths.body, bytes, meta };
}

/** Write `data` to `path` so a reader sees the old file or the new one, never a torn one. */
export async function writeFileAtomic(path: string, data: string): Promise<void> {
  const tmp = tempPathFor(path);
  try {
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await removeQuietly(tmp);
    throw err;
  }
}

export async function removeQuietly(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch {
    // already gone
  }
}

/** Remove temp files a crashed run left behind (only old ones: another run may be writing). */
export async function sweepTempFiles(cacheDir: string, olderThanMs: number, now = Date.now()): Promise<void> {
  let names: string[];
  try {
    names = await readdir(cacheDir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.endsWith('.tmp')) continue;
    const path = join(cacheDir, name);
    try {
      if (now - (await stat(path)).mtimeMs > olderThanMs) await unlink(path);
    } catch {
      // raced with its owner; fine
    }
  }
}

// A read-only or full data folder for one server process, honestly: the suite runs as root, and
// root writes through chmod, so the server gets a mount namespace of its own (unshare -m) in which
// its data folder is a read-only bind mount or a tiny tmpfs. Nothing is mounted outside that
// namespace, so nothing needs unmounting and no other process sees it. nsenter fills a running
// server's tmpfs; a read-only turn while serving takes a real file system (failingCard below).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Runs `steps` in a new private mount namespace, then execs the server command appended to them. */
function namespaced(steps: string[]): string[] {
  return ['unshare', '-m', '--propagation', 'private', 'sh', '-c', ['set -e', ...steps, 'exec "$@"'].join('; '), 'sh'];
}

const copiesInto = (dir: string, files: string[]) => files.map((f) => `cp ${quote(f)} ${quote(dir)}/`);

/** The data folder bind-mounted onto itself, read-only from the start when `readOnly`. */
export function bindWrap(dir: string, readOnly: boolean): string[] {
  const d = quote(dir);
  return namespaced([`mount --bind ${d} ${d}`, ...(readOnly ? [`mount -o remount,bind,ro ${d}`] : [])]);
}

/**
 * `dir` becomes a tmpfs of `sizeKb` holding copies of `files`; with `full`, a filler file then
 * takes every byte left.
 */
export function tmpfsWrap(dir: string, sizeKb: number, files: string[], full: boolean): string[] {
  return namespaced([`mount -t tmpfs -o size=${sizeKb}k tmpfs ${quote(dir)}`, ...copiesInto(dir, files), ...(full ? [fillCommand(dir)] : [])]);
}

function fillCommand(dir: string): string {
  // dd stops with "No space left on device" (exit 1) once the tmpfs is full: that is the point.
  return `dd if=/dev/zero of=${quote(join(dir, 'filler'))} bs=4k 2>/dev/null || true`;
}

/** Runs `script` in the mount namespace of process `pid`; throws with its stderr on failure. */
export function inNamespaceOf(pid: number, script: string): void {
  const r = spawnSync('nsenter', ['-t', String(pid), '-m', 'sh', '-c', script], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`nsenter -t ${pid} -m sh -c ${JSON.stringify(script)} exited with ${r.status}: ${r.stderr || r.error?.message}`);
}

export function fill(pid: number, dir: string): void {
  inNamespaceOf(pid, fillCommand(dir));
}

// --- an SD card that fails: ext4 on a loop device, mounted errors=remount-ro ------------------
// A bind mount cannot be remounted read-only while the server holds files open for writing (EBUSY),
// which is exactly what a failing card does not care about. ext4 does it for real: on a metadata
// error it aborts its journal and remounts itself read-only (the kernel's "emergency_ro"); open
// files then fail with EIO and new ones with EROFS. ext4's trigger_fs_error sysfs file raises such
// an error on demand. The loop device is the one thing outside the namespace: released by the test.

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.error?.message ?? r.stderr.trim()}`);
  return r.stdout.trim();
}

export interface FailingCard {
  device: string;
  /** Mounts the card on `dir` (errors=remount-ro) with copies of `files`, then execs the server. */
  wrap(dir: string, files: string[]): string[];
  /** An ext4 error now: the file system remounts itself read-only. */
  fail(): void;
  /** Detaches the loop device (after the server, and with it its mount namespace, is gone). */
  release(): void;
}

export function failingCard(sizeMb = 16): FailingCard {
  const dir = mkdtempSync(join(tmpdir(), 'hushdns-card-'));
  const image = join(dir, 'card.img');
  writeFileSync(image, '');
  run('truncate', ['-s', `${sizeMb}M`, image]);
  run('mkfs.ext4', ['-q', '-F', image]);
  const device = run('losetup', ['-f', '--show', image]);
  return {
    device,
    wrap: (mountAt, files) => namespaced([`mount -o errors=remount-ro ${quote(device)} ${quote(mountAt)}`, ...copiesInto(mountAt, files)]),
    fail: () => writeFileSync(`/sys/fs/ext4/${basename(device)}/trigger_fs_error`, 'hushdns reliability test: a failing card'),
    release: () => {
      spawnSync('losetup', ['-d', device]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Why a failing card cannot be had here (null: it can). */
export const CARD_PROBLEM: string | null = (() => {
  let card: FailingCard | null = null;
  const mountAt = mkdtempSync(join(tmpdir(), 'hushdns-card-probe-'));
  try {
    if (!existsSync('/sys/fs/ext4')) return 'the kernel has no ext4 sysfs (/sys/fs/ext4)';
    card = failingCard(8);
    const [cmd, ...args] = card.wrap(mountAt, []);
    const r = spawnSync(cmd, [...args, 'sh', '-c', `test -e /sys/fs/ext4/${basename(card.device)}/trigger_fs_error`], { encoding: 'utf8' });
    return r.status === 0 ? null : `ext4 on a loop device cannot be mounted or has no trigger_fs_error (${r.stderr.trim() || `exit ${r.status}`})`;
  } catch (err) {
    return `no loop device or mkfs.ext4: ${(err as Error).message}`;
  } finally {
    card?.release();
    rmSync(mountAt, { recursive: true, force: true });
  }
})();

/** Why this machine cannot run these tests (null: it can): tried once, with every mount they use. */
export const MOUNT_PROBLEM: string | null = (() => {
  const dir = mkdtempSync(join(tmpdir(), 'hushdns-mount-probe-'));
  try {
    const d = quote(dir);
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `set -e; mount --bind ${d} ${d}; mount -o remount,bind,ro ${d}; mount -t tmpfs -o size=64k tmpfs ${d}; command -v nsenter >/dev/null`], { encoding: 'utf8' });
    if (r.error) return `unshare is not available (${r.error.message})`;
    return r.status === 0 ? null : `mount namespaces or mounts are not allowed here (unshare -m: ${r.stderr.trim() || `exit ${r.status}`})`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
})();

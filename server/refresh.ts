// Scheduled list refresh: the compile runs in a child process (`hushdns compile`), so parsing
// millions of lines never delays a DNS answer; the server swaps the new table in when it lands.
// A failed refresh keeps the current table and is reported in /api/health and the log.
import { spawn } from 'node:child_process';
import { setPriority } from 'node:os';
import { join } from 'node:path';
import { envName, FIELDS, formatDuration, type FieldName, type LoadedConfig } from '../common/config.js';
import type { Logger } from '../common/log.js';
import { PACKAGE_ROOT, PACKAGE_VERSION } from '../common/paths.js';

export interface RefreshStatus {
  running: boolean;
  lastStartedAt: number | null;
  lastFinishedAt: number | null;
  lastOk: boolean | null;
  lastError: string | null;
  nextAt: number | null;
}

/** A first full refresh this soon after a first start that only had the bundled lists. */
const FIRST_FULL_REFRESH_MS = 5_000;
/**
 * After a failed refresh, retry sooner than a whole interval: 1 min, 2 min, 4 min… capped at the
 * interval. A Pi that boots without network or a set clock would otherwise wait a day.
 */
const RETRY_FIRST_MS = 60_000;
const JITTER = 0.1;
/** Nice value of the compile child process. */
const COMPILE_NICE = 10;

export class ListRefresher {
  onCompiled: () => void = () => {};
  private timer: NodeJS.Timeout | null = null;
  /** Bumped by reschedule: a refresh that was running then does not plan the next one on the old interval. */
  private plan = 0;
  private consecutiveFailures = 0;
  private child: ReturnType<typeof spawn> | null = null;
  private stopped = false;
  readonly status: RefreshStatus = { running: false, lastStartedAt: null, lastFinishedAt: null, lastOk: null, lastError: null, nextAt: null };

  constructor(
    private readonly loaded: LoadedConfig,
    private readonly dataDir: string,
    private readonly log: Logger,
  ) {}

  /**
   * Offline: the bundled lists only, in this process (first start, before listening).
   * Otherwise the full configured set in a child process.
   */
  async run(opts: { offline: boolean }): Promise<boolean> {
    if (this.status.running) return false;
    this.status.running = true;
    this.status.lastStartedAt = Date.now();
    try {
      if (opts.offline) await this.compileBundled();
      else await this.compileInChild();
      this.status.lastOk = true;
      this.status.lastError = null;
      this.onCompiled();
      return true;
    } catch (err) {
      this.status.lastOk = false;
      this.status.lastError = (err as Error).message;
      this.log.error('list refresh failed; the current table keeps serving', { err });
      return false;
    } finally {
      this.status.running = false;
      this.status.lastFinishedAt = Date.now();
    }
  }

  /** Plans the next refreshes: soon when the table is missing or older than the interval. */
  schedule(intervalMs: number, builtAt: number): void {
    if (intervalMs <= 0 || this.stopped) return;
    const age = Date.now() - builtAt;
    const bundledOnly = this.status.lastOk === true && this.status.lastStartedAt !== null; // compiled offline at start
    const first = bundledOnly || age >= intervalMs ? FIRST_FULL_REFRESH_MS : intervalMs - age;
    this.arm(first, intervalMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.child?.kill('SIGTERM');
  }

  /** A new interval (a reloaded configuration): the next refresh is planned again from the table's age. */
  reschedule(intervalMs: number, builtAt: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.plan++;
    this.status.nextAt = null;
    if (intervalMs > 0 && !this.stopped) this.arm(Math.max(0, intervalMs - (Date.now() - builtAt)), intervalMs);
  }

  private arm(delayMs: number, intervalMs: number): void {
    if (this.stopped) return;
    const plan = this.plan;
    const jittered = Math.round(delayMs * (1 + (Math.random() * 2 - 1) * JITTER));
    this.status.nextAt = Date.now() + jittered;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.run({ offline: false }).then((ok) => {
        this.consecutiveFailures = ok ? 0 : this.consecutiveFailures + 1;
        // A reschedule while this ran has planned the next refresh already (or none, for 0).
        if (plan === this.plan) this.arm(retryDelay(this.consecutiveFailures, intervalMs), intervalMs);
      });
    }, jittered);
    this.timer.unref();
  }

  private async compileBundled(): Promise<void> {
    // Loaded only here: the parsers and the public-suffix data cost the server ~15 MB of memory it
    // never needs once a table exists (later compiles run in a child process).
    const [{ compile }, { compileSettings }] = await Promise.all([import('../compiler/compile.js'), import('../compiler/settings.js')]);
    // Every compile setting as configured (exclusions, inclusions, allow and deny entries, level),
    // but only the bundled lists: they need no network, and a configured list that is missing or
    // broken must not leave the network without any blocking.
    const bundledOnly = { ...this.loaded.config, bundled: true, 'default-sources': false, sources: [], source: [] };
    await compile({ ...compileSettings(bundledOnly, this.loaded.file), dataDir: this.dataDir, compilerVersion: PACKAGE_VERSION });
  }

  /** Flags given to `serve` reach the child compile as their HUSHDNS_* twins. */
  private flagsAsEnv(): Record<string, string> {
    const env: Record<string, string> = {};
    for (const [name, origin] of Object.entries(this.loaded.origins)) {
      if (origin !== 'flag') continue;
      const v = this.loaded.config[name as FieldName];
      env[envName(name)] = Array.isArray(v) ? v.join(',') : FIELDS[name as FieldName].kind === 'duration' ? formatDuration(v as number) : String(v);
    }
    return env;
  }

  private compileInChild(): Promise<void> {
    const args = [join(PACKAGE_ROOT, 'dist', 'cli.js'), 'compile', '--data-dir', this.dataDir, '--json'];
    if (this.loaded.file) args.push('--config', this.loaded.file);
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...this.flagsAsEnv() } });
      this.child = child;
      // A compile can take a core for seconds: on a busy box, DNS answers go first.
      if (child.pid !== undefined) {
        try {
          setPriority(child.pid, COMPILE_NICE);
        } catch {
          // not allowed here: it runs at normal priority
        }
      }
      let stderr = '';
      child.stdout?.resume();
      child.stderr?.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-2000);
      });
      child.on('error', reject);
      child.on('close', (code, signal) => {
        this.child = null;
        if (code === 0) resolve();
        else reject(new Error(`compile exited with ${signal ?? code}: ${stderr.trim().split('\n').pop() ?? ''}`));
      });
    });
  }
}

/** Delay before the next scheduled refresh after `failures` failed ones in a row (0: the interval). */
export function retryDelay(failures: number, intervalMs: number): number {
  if (failures <= 0) return intervalMs;
  return Math.min(intervalMs, RETRY_FIRST_MS * 2 ** Math.min(failures - 1, 20));
}

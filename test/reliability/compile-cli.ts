// `hushdns compile` as users run it beside a serving server: its own process, writing into the
// server's data folder, which the server watches and swaps in.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI } from '../helpers/child-server.js';

/** Writes `content` to DATA_DIR/`file` and starts a compile of exactly that list. */
export function spawnCompile(dataDir: string, file: string, format: string, content: string): ChildProcess {
  const path = join(dataDir, file);
  writeFileSync(path, content);
  return spawn(process.execPath, [CLI, 'compile', '--data-dir', dataDir, '--no-default-sources', '--no-bundled', '--source', `${path}#${format}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, HUSHDNS_CONFIG: '' },
  });
}

/** Runs a compile to its end; rejects with its stderr when it fails. */
export function compile(dataDir: string, file: string, format: string, content: string): Promise<void> {
  const child = spawnCompile(dataDir, file, format, content);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.once('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`hushdns compile exited with ${signal ?? code}: ${stderr.trim()}`))));
  });
}

/** Resolves with the time (performance.now()) of each server log line matching `pattern`, as they arrive. */
export function logTimes(proc: ChildProcess, pattern: RegExp): number[] {
  const times: number[] = [];
  let partial = '';
  proc.stderr!.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (pattern.test(line)) times.push(performance.now());
  });
  return times;
}

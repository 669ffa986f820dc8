// The machine a benchmark ran on, printed above every table and stored with the JSON results.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, totalmem, release, type as osType } from 'node:os';

export interface Machine {
  date: string;
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  os: string;
  kernel: string;
  node: string;
  tools: Record<string, string | null>;
}

function firstLine(cmd: string, args: string[]): string | null {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 5000 });
  if (r.error || r.status === null) return null;
  const text = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
  const line = text.split('\n').map((l) => l.trim()).find((l) => /\d+\.\d+/.test(l));
  return line ?? null;
}

function osName(): string {
  try {
    const m = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync('/etc/os-release', 'utf8'));
    if (m) return m[1];
  } catch {
    // Not Linux-like: fall through.
  }
  return osType();
}

export function describeMachine(tools: string[] = []): Machine {
  const versions: Record<string, string | null> = {};
  for (const t of tools) {
    if (t === 'dnsperf') versions[t] = firstLine('dnsperf', ['-h'])?.replace(/^.*Version\s*/, '') ?? null;
    else if (t === 'dnsmasq') versions[t] = firstLine('dnsmasq', ['--version'])?.replace(/^Dnsmasq version\s*/, '').split(' ')[0] ?? null;
    else if (t === 'unbound') versions[t] = firstLine('unbound', ['-V'])?.replace(/^Version\s*/, '') ?? null;
    else versions[t] = firstLine(t, ['--version']);
  }
  return {
    date: new Date().toISOString(),
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    // cpus(), not availableParallelism(): the harness pins itself, which narrows the latter.
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    os: osName(),
    kernel: release(),
    node: process.version,
    tools: versions,
  };
}

export function formatMachine(m: Machine): string {
  const tools = Object.entries(m.tools)
    .map(([k, v]) => `${k} ${v ?? 'not available'}`)
    .join(', ');
  return `Machine: ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, ${m.os} (Linux ${m.kernel}), Node ${m.node}${tools ? `, ${tools}` : ''}. Date: ${m.date}.`;
}

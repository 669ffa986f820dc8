// The peers and the load generator come from Debian packages: use them when present, otherwise
// install them with apt-get (saying so), and report plainly when that is not possible.
import { spawnSync } from 'node:child_process';
import { haveCommand } from './proc.js';

export interface ToolStatus {
  command: string;
  package: string;
  available: boolean;
  note: string;
}

/** `command` → the Debian package that provides it. */
export const TOOL_PACKAGES: Record<string, string> = { dnsperf: 'dnsperf', resperf: 'dnsperf', dnsmasq: 'dnsmasq-base', unbound: 'unbound', taskset: 'util-linux' };

let updated = false;

export function ensureTools(commands: string[], log: (line: string) => void): Map<string, ToolStatus> {
  const out = new Map<string, ToolStatus>();
  const missing = commands.filter((c) => !haveCommand(c));
  for (const c of commands) if (!missing.includes(c)) out.set(c, { command: c, package: TOOL_PACKAGES[c] ?? c, available: true, note: 'present' });
  if (missing.length === 0) return out;
  const pkgs = [...new Set(missing.map((c) => TOOL_PACKAGES[c] ?? c))];
  const canApt = haveCommand('apt-get') && (process.getuid?.() === 0 || haveCommand('sudo'));
  if (!canApt) {
    for (const c of missing) out.set(c, { command: c, package: TOOL_PACKAGES[c] ?? c, available: false, note: 'missing, and apt-get (as root) is not available here' });
    return out;
  }
  const sudo = process.getuid?.() === 0 ? [] : ['sudo', '-n'];
  log(`installing ${pkgs.join(', ')} with apt-get (missing: ${missing.join(', ')})`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const run = (args: string[]) => {
    const [cmd, ...rest] = [...sudo, ...args];
    return spawnSync(cmd, rest, { env, encoding: 'utf8', timeout: 600_000 });
  };
  let r = run(['apt-get', 'install', '-y', '--no-install-recommends', ...pkgs]);
  if (r.status !== 0 && !updated) {
    updated = true;
    log('apt-get install failed; running apt-get update and trying once more');
    run(['apt-get', 'update']);
    r = run(['apt-get', 'install', '-y', '--no-install-recommends', ...pkgs]);
  }
  const why = r.status === 0 ? '' : `${(r.stderr ?? '').trim().split('\n').slice(-2).join(' ')}`;
  for (const c of missing) {
    const ok = haveCommand(c);
    out.set(c, { command: c, package: TOOL_PACKAGES[c] ?? c, available: ok, note: ok ? 'installed with apt-get by this run' : `apt-get could not install ${TOOL_PACKAGES[c] ?? c}${why ? `: ${why}` : ''}` });
  }
  return out;
}

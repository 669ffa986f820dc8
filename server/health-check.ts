// `hushdns health`: ask the running server over DNS (a name it answers itself, so a dead upstream
// does not fail the check) and over HTTP; exit 0 when both answer. Both checks run at once so the
// whole check stays within one timeout (a container HEALTHCHECK has a deadline of its own).
import { Resolver } from 'node:dns/promises';
import { request } from 'undici';
import { parseHostPort, type Config } from '../common/config.js';

function loopbackFor(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

async function checkDns(host: string, port: number, timeoutMs: number): Promise<string | null> {
  const resolver = new Resolver({ timeout: timeoutMs, tries: 1 });
  resolver.setServers([hostPort(host, port)]);
  try {
    await resolver.resolve4('localhost');
    return null;
  } catch (err) {
    return `DNS on ${hostPort(host, port)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
  }
}

async function checkHttp(host: string, port: number, timeoutMs: number): Promise<string | null> {
  try {
    const res = await request(`http://${hostPort(host, port)}/api/health`, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    const body = (await res.body.json()) as { status?: string; warnings?: string[] };
    if (res.statusCode !== 200) return `HTTP /api/health on ${hostPort(host, port)} answered ${res.statusCode}`;
    // Degraded (an upstream down, a failed refresh) still answers: restarting would not help.
    if (body.status !== 'ok') process.stderr.write(`hushdns health: degraded: ${(body.warnings ?? []).join('; ')}\n`);
    return null;
  } catch (err) {
    return `HTTP on ${hostPort(host, port)}: ${(err as Error).message}`;
  }
}

export async function runHealthCheck(config: Config, timeoutMs: number): Promise<number> {
  const checks: Promise<string | null>[] = [];
  const dns = parseHostPort((config['dns-listen'] as string[])[0] ?? '');
  if (dns) checks.push(checkDns(loopbackFor(dns.host), dns.port, timeoutMs));
  const http = parseHostPort(config['http-listen']);
  if (http) checks.push(checkHttp(loopbackFor(http.host), http.port, timeoutMs));
  if (checks.length === 0) {
    // Passing here would report a server healthy without asking it anything.
    process.stderr.write('hushdns health: nothing to check: --dns-listen and --http-listen are both empty\n');
    return 1;
  }
  const problems = (await Promise.all(checks)).filter((p): p is string => p !== null);
  if (problems.length > 0) {
    process.stderr.write(`hushdns health: ${problems.join('; ')}\n`);
    return 1;
  }
  process.stdout.write('ok\n');
  return 0;
}

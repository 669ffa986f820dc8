// `hushdns health`: ask the running server over DNS (a name it answers itself, so a dead upstream
// does not fail the check) and over HTTP; exit 0 when both answer.
import { Resolver } from 'node:dns/promises';
import { request } from 'undici';
import { parseHostPort, type Config } from '../common/config.js';

function loopbackFor(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}

export async function runHealthCheck(config: Config, timeoutMs: number): Promise<number> {
  const problems: string[] = [];
  const dns = parseHostPort((config['dns-listen'] as string[])[0] ?? '');
  if (dns) {
    const resolver = new Resolver({ timeout: timeoutMs, tries: 1 });
    const host = loopbackFor(dns.host);
    resolver.setServers([host.includes(':') ? `[${host}]:${dns.port}` : `${host}:${dns.port}`]);
    try {
      await resolver.resolve4('localhost');
    } catch (err) {
      problems.push(`DNS on ${host}:${dns.port}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  const http = parseHostPort(config['http-listen']);
  if (http) {
    const host = loopbackFor(http.host);
    try {
      const res = await request(`http://${host.includes(':') ? `[${host}]` : host}:${http.port}/api/health`, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
      const body = (await res.body.json()) as { status?: string; warnings?: string[] };
      if (res.statusCode !== 200) problems.push(`HTTP /api/health answered ${res.statusCode}`);
      else if (body.status !== 'ok') process.stderr.write(`hushdns health: degraded: ${(body.warnings ?? []).join('; ')}\n`);
    } catch (err) {
      problems.push(`HTTP on ${host}:${http.port}: ${(err as Error).message}`);
    }
  }
  if (problems.length > 0) {
    process.stderr.write(`hushdns health: ${problems.join('; ')}\n`);
    return 1;
  }
  process.stdout.write('ok\n');
  return 0;
}

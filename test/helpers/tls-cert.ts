// A throwaway self-signed certificate for local DoT / DoH servers, made with the openssl CLI
// (node:crypto can make keys but not X.509 certificates). Returns null with a reason when
// openssl is missing, so tests can skip visibly instead of failing.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCert {
  key: Buffer;
  cert: Buffer;
  /** Names the certificate is valid for (DNS names and IP addresses). */
  names: string[];
}

export type TestCertResult = { ok: true; cert: TestCert } | { ok: false; reason: string };

/** Valid for `dns.example.org`, `localhost`, 127.0.0.1 and ::1 unless told otherwise. */
export async function makeTestCert(names: string[] = ['dns.example.org', 'localhost', '127.0.0.1', '::1']): Promise<TestCertResult> {
  const dir = await mkdtemp(join(tmpdir(), 'hushdns-cert-'));
  try {
    const san = names.map((n) => (isAddress(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
    const keyPath = join(dir, 'key.pem');
    const certPath = join(dir, 'cert.pem');
    // prettier-ignore
    await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', keyPath, '-out', certPath, '-days', '2',
      '-subj', `/CN=${names[0]}`, '-addext', `subjectAltName=${san}`,
    ], { timeout: 20_000 });
    return { ok: true, cert: { key: await readFile(keyPath), cert: await readFile(certPath), names } };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const reason = e.code === 'ENOENT' ? 'the openssl command is not installed' : `openssl failed: ${e.message}`;
    return { ok: false, reason };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function isAddress(name: string): boolean {
  return name.includes(':') || /^\d+\.\d+\.\d+\.\d+$/.test(name);
}

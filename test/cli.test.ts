// The command line as a user and a container runtime see it: `node dist/cli.js` in a child process,
// real sockets on loopback, real files. Every server gets a fake upstream on 127.0.0.1 and no
// scheduled refresh unless a test asks for one, so nothing leaves the machine.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { envName, FIELDS, type FieldName } from '../common/config.js';
import { addressesOf, makeQuery, rcodeOf, tcpExchange, udpExchange } from './helpers/dns-client.js';
import { startFakeUpstream, type FakeUpstream } from './helpers/fake-upstream.js';
import { tempDir } from './helpers/temp.js';

const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const HAS_DIG = spawnSync('dig', ['-v'], { stdio: 'ignore' }).status === 0;

/** The environment without the caller's HUSHDNS_* settings, so only what a test sets counts. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HUSHDNS_')) env[k] = v;
  return { ...env, ...extra };
}

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI with `args`, or with `shell` a command line run inside `script`, which gives it a terminal. */
function run(args: string[], opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number; shell?: string } = {}): Result {
  const [file, argv] = opts.shell ? ['script', ['-qec', opts.shell, '/dev/null']] : [process.execPath, [CLI, ...args]];
  const r = spawnSync(file, argv, {
    cwd: opts.cwd ?? workDir,
    env: cleanEnv(opts.env),
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 20_000,
    // yargs wraps help to the terminal; a fixed width keeps assertions stable.
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Serving {
  child: ChildProcess;
  dns: { host: string; port: number };
  http: { host: string; port: number };
  stderr: () => string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
  /** The first log line matching `re` written after character `since` of stderr. */
  waitForLog(re: RegExp, timeoutMs?: number, since?: number): Promise<string>;
}

const children: ChildProcess[] = [];

function serve(args: string[], opts: { env?: Record<string, string>; dataDir?: string } = {}): Promise<Serving> {
  const dataDir = opts.dataDir ?? tempDir();
  const child = spawn(
    process.execPath,
    [CLI, 'serve', '--data-dir', dataDir, '--dns-listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', '--upstream', upstream.udpUrl, ...(args.includes('--refresh-interval') ? [] : ['--refresh-interval', '0']), ...args],
    { cwd: workDir, env: cleanEnv(opts.env), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(child);
  let stderr = '';
  const waiters: (() => void)[] = [];
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    for (const w of waiters.splice(0)) w();
  });
  child.stdout!.resume();
  const exited = new Promise<number | string>((r) => child.once('exit', (code, signal) => r(code ?? signal ?? -1)));
  const waitForLog = (re: RegExp, timeoutMs = 15_000, since = 0) =>
    new Promise<string>((resolveLine, reject) => {
      const deadline = setTimeout(() => reject(new Error(`no log line matching ${re} within ${timeoutMs} ms; stderr:\n${stderr}`)), timeoutMs);
      const check = () => {
        const line = stderr.slice(since).split('\n').find((l) => re.test(l));
        if (line) {
          clearTimeout(deadline);
          resolveLine(line);
        } else if (child.exitCode !== null) {
          clearTimeout(deadline);
          reject(new Error(`serve exited with ${child.exitCode} before logging ${re}; stderr:\n${stderr}`));
        } else waiters.push(check);
      };
      check();
    });
  return waitForLog(/hushdns is answering/).then((line) => {
    const rec = JSON.parse(line) as { dns: string[]; http: string };
    const split = (a: string) => ({ host: a.slice(0, a.lastIndexOf(':')), port: Number(a.slice(a.lastIndexOf(':') + 1)) });
    return { child, dns: split(rec.dns[0]), http: split(rec.http), stderr: () => stderr, exited, waitForLog };
  });
}

/** A's addresses for `name` from the server, with dig when installed, else a raw UDP query. */
async function lookup(server: { host: string; port: number }, name: string): Promise<string[]> {
  if (HAS_DIG) {
    // Asynchronous: the fake upstream lives in this process and must keep answering meanwhile.
    const r = await new Promise<Result>((done) => {
      const child = spawn('dig', [`@${server.host}`, '-p', String(server.port), name, 'A', '+short', '+tries=1', '+time=3'], { timeout: 10_000 });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (status) => done({ status, stdout, stderr }));
    });
    expect(r.status, `dig ${name}: ${r.stdout}${r.stderr}`).toBe(0);
    return r.stdout.split('\n').filter((l) => /^\d+\.\d+\.\d+\.\d+$/.test(l));
  }
  return addressesOf(await udpExchange(server.host, server.port, makeQuery(name, 'A')));
}

/** A loopback port nothing listens on (bound, read, released). */
async function freePort(kind: 'udp' | 'tcp'): Promise<number> {
  if (kind === 'udp') {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const port = s.address().port;
    await new Promise<void>((r) => s.close(() => r()));
    return port;
  }
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

let workDir: string;
let upstream: FakeUpstream;

beforeAll(async () => {
  if (!existsSync(CLI)) {
    console.warn('cli: dist/cli.js is missing; building with tsc first');
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.json')], { stdio: 'inherit', timeout: 180_000 });
  }
  workDir = tempDir('hushdns-cli-');
  upstream = await startFakeUpstream();
}, 200_000);

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

afterAll(async () => {
  await upstream?.stop();
  rmSync(workDir, { recursive: true, force: true });
});

describe('hushdns --help and --version', () => {
  it('lists every command and says how to get per-command help', () => {
    const r = run(['--help']);
    expect(r.status).toBe(0);
    for (const cmd of ['serve', 'compile', 'why <name>', 'export', 'config <action>', 'health']) expect(r.stdout).toContain(`hushdns ${cmd}`);
    expect(r.stdout).toContain('--version');
  });

  it('prints the package version', () => {
    const r = run(['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(VERSION);
  });

  it.each([
    ['serve', 'serve'],
    ['compile', 'compile'],
    ['health', 'serve'],
  ] as const)('`%s --help` lists each of its settings with its default and environment variable', (command, scope) => {
    const r = run([command, '--help']);
    expect(r.status).toBe(0);
    const help = r.stdout.replace(/\s+/g, ' ');
    for (const [name, def] of Object.entries(FIELDS) as [FieldName, (typeof FIELDS)[FieldName]][]) {
      const fileOnly = 'fileOnly' in def && def.fileOnly;
      const shown = !fileOnly && (def.scope === scope || def.scope === 'both');
      if (shown) {
        expect(help, `${command} --help: --${name}`).toContain(`--${name} `);
        expect(help, `${command} --help: ${envName(name)}`).toContain(`[env: ${envName(name)}]`);
      } else expect(help, `${command} --help must not offer --${name}`).not.toMatch(new RegExp(`--${name}\\s`));
    }
    expect(help).toContain('--config');
  });

  it('documents the options of why, export, health and config', () => {
    const why = run(['why', '--help']).stdout;
    expect(why).toMatch(/--data-dir/);
    expect(why).toMatch(/--json/);
    const exp = run(['export', '--help']).stdout;
    for (const format of ['hosts', 'domains', 'adblock', 'dnsmasq', 'unbound', 'rpz']) expect(exp).toContain(`"${format}"`);
    expect(exp).toMatch(/--output/);
    expect(run(['health', '--help']).stdout).toMatch(/--timeout/);
    const config = run(['config', '--help']).stdout;
    expect(config).toMatch(/"check", "print"/);
    expect(run(['compile', '--help']).stdout).toMatch(/--json/);
  });

  // Known gap (cli.ts): `config --help` registers the settings of both scopes one after the other,
  // so data-dir and log-level appear twice and log-level lists its choices twice. When this passes,
  // drop `.fails`.
  it('`config --help` lists every option once', () => {
    const help = run(['config', '--help']).stdout;
    for (const name of ['data-dir', 'log-level']) expect(help.match(new RegExp(`--${name}\\s`, 'g'))).toHaveLength(1);
  });
});

describe('hushdns config', () => {
  it('check accepts a valid file and names it', () => {
    const file = join(workDir, 'good.yaml');
    writeFileSync(file, 'block-mode: nxdomain\nblock-ttl: 5m\nallow:\n  - example.org\n');
    const r = run(['config', 'check', '--config', file]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`configuration OK (${file})`);
  });

  it('check rejects a bad file, naming every bad key, its value and what is allowed', () => {
    const file = join(workDir, 'bad.yaml');
    writeFileSync(file, 'block-mode: loud\nupstream-timeout: forever\nblock-mod: nxdomain\n');
    const r = run(['config', 'check', '--config', file]);
    expect(r.status).not.toBe(0);
    expect(r.stdout).not.toContain('configuration OK');
    expect(r.stderr).toContain('block-mode = "loud"');
    expect(r.stderr).toContain('expected one of null, nxdomain, nodata, refused, custom');
    expect(r.stderr).toContain('upstream-timeout = "forever"');
    expect(r.stderr).toMatch(/expected a duration such as 500ms, 2s/);
    expect(r.stderr).toMatch(/block-mod \(in .*bad\.yaml\): unknown setting/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
  });

  it('check refuses an empty upstream list, naming the key and an example, and serve will not start with it', () => {
    const file = join(workDir, 'no-upstream.yaml');
    writeFileSync(file, 'upstream: []\n');
    const r = run(['config', 'check', '--config', file]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/upstream: at least one upstream resolver is needed, e.g. --upstream https:\/\/1\.1\.1\.1\/dns-query/);
    const s = run(['serve', '--config', file, '--data-dir', tempDir(), '--dns-listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', '--refresh-interval', '0'], { timeoutMs: 20_000 });
    expect(s.status).toBe(2);
    expect(s.stderr).toMatch(/upstream: at least one upstream resolver is needed/);
    expect(s.stderr).not.toMatch(/\n\s+at /);
  });

  it('check runs the checks serve and compile run, and reports all of their problems together', () => {
    const file = join(workDir, 'deep.yaml');
    writeFileSync(
      file,
      [
        'upstream:',
        '  - https://1.1.1.1/dns-query',
        '  - ftp://9.9.9.9',
        'local-records:',
        '  - { name: mail.lan, type: MX, value: 192.168.1.5 }',
        'sources:',
        '  - no-such-registry-id',
        '  - { path: ./lists-that-are-not-here.txt, format: hosts }',
        'exclude:',
        '  - /[unclosed/',
        'include:',
        '  - "not a name"',
        'deny:',
        '  - co.uk',
      ].join('\n'),
    );
    const r = run(['config', 'check', '--config', file]);
    expect(r.status).toBe(2);
    expect(r.stdout).not.toContain('configuration OK');
    expect(r.stderr).toMatch(/upstream\[1\] = "ftp:\/\/9\.9\.9\.9": /);
    expect(r.stderr).toMatch(/local-records\[0\]\.type = "MX": expected A, AAAA, CNAME, PTR or TXT/);
    expect(r.stderr).toMatch(/sources\[0\]: source no-such-registry-id: no such file .* and not a registry id/);
    expect(r.stderr).toMatch(/sources\[1\]: source \.\/lists-that-are-not-here\.txt: no such file/);
    expect(r.stderr).toMatch(/exclude\[0\] = "\/\[unclosed\/": not a valid regular expression/);
    expect(r.stderr).toMatch(/include\[0\] = "not a name": not a valid inclusion/);
    expect(r.stderr).toMatch(/deny\[0\] = "co\.uk": expected a name .*not public-suffix/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    // The same file stops serve and compile with the same messages.
    const compile = run(['compile', '--config', file, '--data-dir', join(workDir, 'deep-data')]);
    expect(compile.status).toBe(2);
    expect(compile.stderr).toMatch(/exclude\[0\] = "\/\[unclosed\/"/);
  });

  it('check names the environment variable a bad value came from', () => {
    const r = run(['config', 'check'], { env: { HUSHDNS_CACHE_SIZE: 'lots', HUSHDNS_BLOCK_MODE: 'custom' } });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('cache-size = "lots" (from HUSHDNS_CACHE_SIZE): expected a whole number');
    expect(r.stderr).toMatch(/block-ip: --block-mode custom needs at least one address, e.g. --block-ip/);
  });

  it('print shows each effective value and whether it came from a flag, the environment, the file or the default', () => {
    const file = join(workDir, 'print.yaml');
    writeFileSync(file, 'block-ttl: 5m\nblock-mode: nodata\ncache-size: 10\n');
    const r = run(['config', 'print', '--config', file, '--cache-size', '30'], { env: { HUSHDNS_BLOCK_MODE: 'nxdomain' } });
    expect(r.status).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines).toContain('cache-size: 30  # flag');
    expect(lines).toContain('block-mode: "nxdomain"  # env');
    expect(lines).toContain('block-ttl: 5m  # file');
    expect(lines).toContain('data-dir: "./data"  # default');
    expect(lines.filter((l) => /^[a-z-]+: .*  # (default|file|env|flag)$/.test(l))).toHaveLength(Object.keys(FIELDS).length);
  });
});

describe('hushdns serve', () => {
  it('answers DNS on a random port and exits 0 within a few seconds of SIGTERM', async () => {
    const s = await serve([]);
    // Answered by the bundled lists, by the server itself, and by the (fake) upstream.
    expect(await lookup(s.dns, 'tracking.miui.com')).toEqual(['0.0.0.0']);
    expect(await lookup(s.dns, 'localhost')).toEqual(['127.0.0.1']);
    expect(await lookup(s.dns, 'www.example.org')).toEqual(['192.0.2.1']);
    const t0 = Date.now();
    s.child.kill('SIGTERM');
    expect(await s.exited, s.stderr()).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(s.stderr()).toMatch(/"msg":"shutting down","signal":"SIGTERM"/);
    expect(s.stderr()).toMatch(/"msg":"stopped"/);
  });

  it('keeps a small heap by default and takes V8\'s defaults with --memory speed, as /api/health reports', async () => {
    for (const [args, mode] of [[[], 'small'], [['--memory', 'speed'], 'speed']] as const) {
      const s = await serve([...args]);
      expect(await lookup(s.dns, 'www.example.org')).toEqual(['192.0.2.1']);
      const health = (await (await fetch(`http://${s.http.host}:${s.http.port}/api/health`)).json()) as { memory: { mode: string; rssBytes: number; heapUsedBytes: number } };
      expect(health.memory.mode).toBe(mode);
      expect(health.memory.rssBytes).toBeGreaterThan(health.memory.heapUsedBytes);
      s.child.kill('SIGTERM');
      expect(await s.exited, s.stderr()).toBe(0);
    }
  });

  it('reloads on SIGHUP, logs it and keeps answering', async () => {
    const s = await serve([]);
    // An answer proves the start-up tick, which installs the signal handlers, has finished.
    expect(await lookup(s.dns, 'localhost')).toEqual(['127.0.0.1']);
    const mark = s.stderr().length;
    s.child.kill('SIGHUP');
    await s.waitForLog(/SIGHUP/, 5000, mark);
    await s.waitForLog(/blocklist swapped in/, 5000, mark);
    expect(await lookup(s.dns, 'tracking.miui.com')).toEqual(['0.0.0.0']);
    expect(s.child.exitCode).toBeNull();
    s.child.kill('SIGTERM');
    expect(await s.exited, s.stderr()).toBe(0);
  });

  // Known gap (server/listen/udp.ts): close() closes the socket while queries are still waiting
  // for an upstream; their answers are then sent on the closed socket, which throws
  // ERR_SOCKET_DGRAM_NOT_RUNNING outside any handler and the process dies with status 1 instead of
  // finishing them. When this passes, drop `.fails`.
  it('exits 0 on SIGTERM while a query is still waiting for a slow upstream', async () => {
    upstream.set('slow.example.org', { delayMs: 1500 });
    try {
      const s = await serve([]);
      expect(await lookup(s.dns, 'localhost')).toEqual(['127.0.0.1']);
      const pending = udpExchange(s.dns.host, s.dns.port, makeQuery('slow.example.org', 'A'), 4000).catch(() => null);
      await new Promise((r) => setTimeout(r, 300));
      s.child.kill('SIGTERM');
      const code = await s.exited;
      await pending;
      expect(code).toBe(0);
    } finally {
      upstream.reset();
    }
  });

  it('refuses a DNS port in use with a message naming the address and the fix', async () => {
    const holder: Socket = createSocket('udp4');
    await new Promise<void>((r) => holder.bind(0, '127.0.0.1', () => r()));
    const port = holder.address().port;
    try {
      const r = await new Promise<Result>((done) => {
        const child = spawn(process.execPath, [CLI, 'serve', '--data-dir', tempDir(), '--dns-listen', `127.0.0.1:${port}`, '--http-listen', '127.0.0.1:0', '--upstream', upstream.udpUrl, '--refresh-interval', '0'], {
          cwd: workDir,
          env: cleanEnv(),
        });
        children.push(child);
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('exit', (status) => done({ status, stdout, stderr }));
      });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain(`127.0.0.1:${port}`);
      expect(r.stderr).toContain('EADDRINUSE');
      expect(r.stderr).toMatch(/--dns-listen 0\.0\.0\.0:5353/);
    } finally {
      holder.close();
    }
  });

  // Known gap (cli.ts): ListenError is not among the errors main() prints as a message, so the
  // message above is followed by a stack trace and the exit status is 1, not 2 like other
  // configuration problems. When this passes, drop `.fails`.
  it('prints a listen failure as a message without a stack trace', async () => {
    const holder: Socket = createSocket('udp4');
    await new Promise<void>((r) => holder.bind(0, '127.0.0.1', () => r()));
    try {
      const r = spawnSync(process.execPath, [CLI, 'serve', '--data-dir', tempDir(), '--dns-listen', `127.0.0.1:${holder.address().port}`, '--http-listen', '127.0.0.1:0', '--upstream', upstream.udpUrl, '--refresh-interval', '0'], {
        cwd: workDir,
        env: cleanEnv(),
        encoding: 'utf8',
        timeout: 20_000,
      });
      expect(r.stderr).toMatch(/EADDRINUSE/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    } finally {
      holder.close();
    }
  });

  it('refuses an HTTP port in use with a message naming the address and the fix', async () => {
    const holder: Server = createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', () => r()));
    const port = (holder.address() as { port: number }).port;
    try {
      const r = spawnSync(process.execPath, [CLI, 'serve', '--data-dir', tempDir(), '--dns-listen', '127.0.0.1:0', '--http-listen', `127.0.0.1:${port}`, '--upstream', upstream.udpUrl, '--refresh-interval', '0'], {
        cwd: workDir,
        env: cleanEnv(),
        encoding: 'utf8',
        timeout: 20_000,
      });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain(`127.0.0.1:${port}`);
      expect(r.stderr).toMatch(/--http-listen/);
    } finally {
      holder.close();
    }
  });

  it('refuses an HTTP port in use in cluster mode too, stopping the workers it started', async () => {
    const holder: Server = createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', () => r()));
    const port = (holder.address() as { port: number }).port;
    try {
      const r = spawnSync(process.execPath, [CLI, 'serve', '--workers', '2', '--data-dir', tempDir(), '--dns-listen', '127.0.0.1:0', '--http-listen', `127.0.0.1:${port}`, '--upstream', upstream.udpUrl, '--refresh-interval', '0'], {
        cwd: workDir,
        env: cleanEnv(),
        encoding: 'utf8',
        timeout: 20_000,
      });
      expect(r.signal, 'serve did not exit by itself').toBeNull();
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain(`127.0.0.1:${port}`);
      expect(r.stderr).toMatch(/--http-listen/);
    } finally {
      holder.close();
    }
  });

  it('takes a changed configuration file on SIGHUP: answers change at once, settings that need a restart are named, a bad file changes nothing', async () => {
    const file = join(workDir, 'reload.yaml');
    writeFileSync(file, 'block-mode: null\n');
    const s = await serve(['--config', file]);
    const ask = (name: string, type = 'A') => udpExchange(s.dns.host, s.dns.port, makeQuery(name, type));
    expect(addressesOf(await ask('tracking.miui.com'))).toEqual(['0.0.0.0']);
    expect(addressesOf(await ask('nas.home.example'))).toEqual(['192.0.2.1']);

    writeFileSync(file, ['block-mode: nxdomain', 'local-records:', '  - { name: nas.home.example, type: A, value: 192.168.1.20 }', 'querylog-retention: 2d', ''].join('\n'));
    let mark = s.stderr().length;
    s.child.kill('SIGHUP');
    const reloaded = await s.waitForLog(/configuration reloaded/, 5000, mark);
    expect(JSON.parse(reloaded).changed).toEqual(expect.arrayContaining(['block-mode', 'local-records']));
    expect(JSON.parse(await s.waitForLog(/only when hushdns restarts/, 5000, mark)).settings).toEqual(['querylog-retention']);
    expect(rcodeOf(await ask('tracking.miui.com'))).toBe(3);
    expect(addressesOf(await ask('nas.home.example'))).toEqual(['192.168.1.20']);

    // A broken file: the log names the problem, the running configuration goes on.
    writeFileSync(file, 'block-mode: sometimes\n');
    mark = s.stderr().length;
    s.child.kill('SIGHUP');
    expect(await s.waitForLog(/reloaded configuration is invalid/, 5000, mark)).toMatch(/block-mode/);
    expect(rcodeOf(await ask('tracking.miui.com'))).toBe(3);
    s.child.kill('SIGTERM');
    expect(await s.exited, s.stderr()).toBe(0);
  });

  it('reports the cache and upstreams a SIGHUP reload put in place, not the ones it replaced', async () => {
    const file = join(workDir, 'reload-views.yaml');
    writeFileSync(file, 'cache-size: 1000\n');
    const s = await serve(['--config', file]);
    const health = async () => (await (await fetch(`http://${s.http.host}:${s.http.port}/api/health`)).json()) as { cache: { entries: number }; upstreams: { name: string }[] };
    expect(await lookup(s.dns, 'www.example.org')).toEqual(['192.0.2.1']);
    expect((await health()).cache.entries).toBe(1);
    // A new cache size replaces the cache: health must read the new, empty one.
    writeFileSync(file, 'cache-size: 500\n');
    const mark = s.stderr().length;
    s.child.kill('SIGHUP');
    await s.waitForLog(/configuration reloaded/, 5000, mark);
    expect((await health()).cache.entries).toBe(0);
    expect(await lookup(s.dns, 'www.example.net')).toEqual(['192.0.2.1']);
    const after = await health();
    expect(after.cache.entries).toBe(1);
    expect(after.upstreams.map((u) => u.name)).toEqual([upstream.udpUrl]);
    s.child.kill('SIGTERM');
    expect(await s.exited, s.stderr()).toBe(0);
  });

  it('takes a changed configuration on SIGHUP in every worker of a cluster', async () => {
    const file = join(workDir, 'reload-cluster.yaml');
    writeFileSync(file, 'block-mode: null\n');
    const s = await serve(['--config', file, '--workers', '2']);
    writeFileSync(file, 'block-mode: refused\n');
    const mark = s.stderr().length;
    s.child.kill('SIGHUP');
    await s.waitForLog(/configuration reloaded/, 5000, mark);
    await new Promise((r) => setTimeout(r, 300));
    const answers = await Promise.all(Array.from({ length: 40 }, () => udpExchange(s.dns.host, s.dns.port, makeQuery('tracking.miui.com', 'A'))));
    expect(answers.map(rcodeOf).filter((r) => r !== 5)).toEqual([]);
    s.child.kill('SIGTERM');
    expect(await s.exited, s.stderr()).toBe(0);
  }, 30_000);

  it('refreshes its lists on schedule in a child process and swaps the new table in', async () => {
    const list = join(workDir, 'refresh-list.txt');
    writeFileSync(list, '0.0.0.0 refreshed.example.org\n');
    // A first start compiles the bundled lists only; the first full refresh follows within ~5 s.
    const s = await serve(['--refresh-interval', '1h'], { env: { HUSHDNS_DEFAULT_SOURCES: 'false', HUSHDNS_SOURCE: `${list}#hosts` } });
    const mark = s.stderr().length;
    expect(await lookup(s.dns, 'refreshed.example.org')).toEqual(['192.0.2.1']);
    await s.waitForLog(/blocklist swapped in/, 20_000, mark);
    expect(await lookup(s.dns, 'refreshed.example.org')).toEqual(['0.0.0.0']);
    const health = (await (await fetch(`http://${s.http.host}:${s.http.port}/api/health`)).json()) as { refresh: { lastOk: boolean; nextAt: number } };
    expect(health.refresh.lastOk).toBe(true);
    expect(health.refresh.nextAt - Date.now()).toBeGreaterThan(30 * 60_000);
    s.child.kill('SIGTERM');
    expect(await s.exited, s.stderr()).toBe(0);
  }, 40_000);

  it('keeps the current table when a scheduled refresh fails and reports it in /api/health and the log', async () => {
    const s = await serve(['--refresh-interval', '1h'], { env: { HUSHDNS_DEFAULT_SOURCES: 'false', HUSHDNS_SOURCE: `${join(workDir, 'no-such-list.txt')}#hosts` } });
    await s.waitForLog(/list refresh failed/, 20_000);
    const health = (await (await fetch(`http://${s.http.host}:${s.http.port}/api/health`)).json()) as { status: string; warnings: string[]; refresh: { lastOk: boolean; nextAt: number } };
    expect(health.status).toBe('degraded');
    expect(health.warnings.join('\n')).toMatch(/last list refresh failed: .*no-such-list\.txt/);
    expect(health.refresh.lastOk).toBe(false);
    // Retried within minutes, not after a whole interval.
    expect(health.refresh.nextAt - Date.now()).toBeLessThan(2 * 60_000);
    expect(await lookup(s.dns, 'tracking.miui.com')).toEqual(['0.0.0.0']);
    s.child.kill('SIGTERM');
    expect(await s.exited, s.stderr()).toBe(0);
  }, 40_000);
});

/** The processes whose parent is `pid` (the workers of a cluster primary). */
function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid …: comm may hold spaces, so read after its closing parenthesis.
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

async function until<T>(what: string, probe: () => Promise<T | null> | T | null, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('hushdns serve --workers 2 (cluster mode)', () => {
  const TOKEN = 'cluster-test-token-0123456789';
  const api = async (s: Serving, path: string, body?: unknown) => {
    const res = await fetch(`http://${s.http.host}:${s.http.port}${path}`, body === undefined ? {} : { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return (await res.json()) as Record<string, unknown>;
  };

  it('answers from two worker processes over UDP and TCP, counts and logs their queries together, and applies API changes in each', async () => {
    const s = await serve(['--workers', '2', '--querylog-flush-interval', '200ms', '--api-token', TOKEN]);
    expect(childPids(s.child.pid!), 'primary + 2 workers').toHaveLength(2);
    expect(await lookup(s.dns, 'tracking.miui.com')).toEqual(['0.0.0.0']);
    const tcp = await tcpExchange(s.dns.host, s.dns.port, [makeQuery('tracking.miui.com', 'A'), makeQuery('www.example.org', 'A')]);
    expect(tcp.map(addressesOf)).toEqual([['0.0.0.0'], ['192.0.2.1']]);
    // A burst from many sockets at once reaches both workers (the kernel wakes whichever waits).
    const burst = await Promise.all(Array.from({ length: 200 }, (_, i) => udpExchange(s.dns.host, s.dns.port, makeQuery(`n${i}.example.org`, 'A'))));
    expect(burst.every((r) => addressesOf(r)[0] === '192.0.2.1')).toBe(true);
    const workers = await until('both workers to report', async () => {
      const w = (await api(s, '/api/health')).workers as { running: number; processes: { queries: number }[] } | undefined;
      return w && w.processes.reduce((n, p) => n + p.queries, 0) >= 203 ? w : null;
    });
    expect(workers.running).toBe(2);
    expect(workers.processes.every((p) => p.queries > 0), JSON.stringify(workers)).toBe(true);
    // Counters and the query log add the workers up.
    const metrics = await (await fetch(`http://${s.http.host}:${s.http.port}/metrics`)).text();
    const counted = [...metrics.matchAll(/^hushdns_queries_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
    expect(counted).toBeGreaterThanOrEqual(203);
    await until('the query log to hold every query', async () => ((await api(s, '/api/summary')).total as number) >= 203 || null);
    const blockedRows = (await api(s, '/api/querylog?name=tracking.miui.com&outcome=blocked')).rows as unknown[];
    expect(blockedRows.length).toBeGreaterThanOrEqual(2);
    // An allow entry and a pause reach every worker: no answer of a burst is blocked any more.
    await api(s, '/api/allow', { name: 'tracking.miui.com' });
    await new Promise((r) => setTimeout(r, 200));
    const allowed = await Promise.all(Array.from({ length: 40 }, () => udpExchange(s.dns.host, s.dns.port, makeQuery('tracking.miui.com', 'A'))));
    expect(allowed.map((r) => addressesOf(r)[0]).filter((a) => a === '0.0.0.0')).toEqual([]);
    await api(s, '/api/allow', { name: 'tracking.miui.com', remove: true });
    await api(s, '/api/pause', { seconds: 60 });
    await new Promise((r) => setTimeout(r, 200));
    expect(await lookup(s.dns, 'ads.tracking.miui.com')).toEqual(['192.0.2.1']);
    s.child.kill('SIGTERM');
    expect(await s.exited, s.stderr()).toBe(0);
    expect(childPids(s.child.pid!), 'no worker outlives the primary').toEqual([]);
  }, 40_000);

  it('counts the queries its workers leave out of the query log in /api/health', async () => {
    const file = join(workDir, 'exclude-cluster.yaml');
    writeFileSync(file, 'querylog-exclude-names:\n  - private.example.org\n');
    const s = await serve(['--config', file, '--workers', '2', '--querylog-flush-interval', '200ms']);
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => udpExchange(s.dns.host, s.dns.port, makeQuery(`d${i}.private.example.org`, 'A'))));
    expect(answers.every((r) => addressesOf(r)[0] === '192.0.2.1')).toBe(true);
    await lookup(s.dns, 'www.example.org');
    const health = await until('the workers to report what they excluded', async () => {
      const h = (await api(s, '/api/health')) as { querylog: { excluded: number; dropped: number } };
      return h.querylog.excluded >= 30 ? h : null;
    });
    expect(health.querylog).toMatchObject({ excluded: 30, dropped: 0 });
    await until('the query log to hold the one query not excluded', async () => ((await api(s, '/api/summary')).total as number) >= 1 || null);
    expect((await api(s, '/api/summary')).total).toBe(1);
    s.child.kill('SIGTERM');
    expect(await s.exited, s.stderr()).toBe(0);
  }, 30_000);

  it('replaces a worker that dies and keeps answering meanwhile', async () => {
    const s = await serve(['--workers', '2']);
    const [first] = childPids(s.child.pid!);
    const mark = s.stderr().length;
    process.kill(first, 'SIGKILL');
    for (let i = 0; i < 10; i++) expect(await lookup(s.dns, 'tracking.miui.com')).toEqual(['0.0.0.0']);
    await s.waitForLog(/a DNS worker stopped; starting a new one/, 10_000, mark);
    const now = await until('a new worker', () => {
      const pids = childPids(s.child.pid!);
      return pids.length === 2 && !pids.includes(first) ? pids : null;
    });
    expect(now).toHaveLength(2);
    expect(await lookup(s.dns, 'www.example.org')).toEqual(['192.0.2.1']);
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(0);
  }, 30_000);

  it('stops with the listen error, and no worker left, when the port is taken', async () => {
    const holder = createSocket('udp4');
    await new Promise<void>((r) => holder.bind(0, '127.0.0.1', () => r()));
    const port = holder.address().port;
    try {
      const r = run(['serve', '--workers', '2', '--data-dir', tempDir(), '--dns-listen', `127.0.0.1:${port}`, '--http-listen', '127.0.0.1:0', '--upstream', upstream.udpUrl, '--refresh-interval', '0'], { timeoutMs: 30_000 });
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`127.0.0.1:${port}`);
      expect(r.stderr).toMatch(/--dns-listen/);
      expect(r.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
    } finally {
      holder.close();
    }
  }, 40_000);
});

describe('hushdns health', () => {
  it('exits 0 against a running server, reading the addresses from the environment like the container check', async () => {
    const s = await serve([]);
    const r = run(['health'], { env: { HUSHDNS_DNS_LISTEN: `${s.dns.host}:${s.dns.port}`, HUSHDNS_HTTP_LISTEN: `${s.http.host}:${s.http.port}` } });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('ok');
    s.child.kill('SIGTERM');
    await s.exited;
  });

  it('exits 1 when nothing listens, naming what it could not reach', async () => {
    const dns = await freePort('udp');
    const http = await freePort('tcp');
    const r = run(['health', '--dns-listen', `127.0.0.1:${dns}`, '--http-listen', `127.0.0.1:${http}`, '--timeout', '1000']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`DNS on 127.0.0.1:${dns}`);
    expect(r.stderr).toContain(`HTTP on 127.0.0.1:${http}`);
  });

  it('fails when given no address to check instead of reporting health it never asked for', () => {
    const noDns = run(['health', '--dns-listen', '--http-listen', '']);
    expect(noDns.status).toBe(2); // an empty dns-listen is a configuration error
    expect(noDns.stderr).toMatch(/dns-listen: at least one address is needed/);
  });
});

describe('hushdns compile, why and export', () => {
  const dataDir = () => join(workDir, 'table');
  const lists = () => {
    writeFileSync(join(workDir, 'hosts.txt'), '0.0.0.0 tracker.example.org\n0.0.0.0 ads.example.com\n');
    writeFileSync(join(workDir, 'rules.txt'), '||metrics.example.net^\n@@||ok.metrics.example.net^\n');
  };

  it('compile --json reports every source and the totals as JSON', () => {
    lists();
    const r = run(['compile', '--data-dir', dataDir(), '--no-default-sources', '--no-bundled', '--source', './hosts.txt#hosts', '--source', './rules.txt#adblock', '--json']);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout) as { ok: boolean; path: string; sources: { id: string; format: string; entries: number; error: string | null }[]; totals: { rules: number } };
    expect(report.ok).toBe(true);
    expect(report.path).toBe(join(dataDir(), 'blocklist.sqlite'));
    expect(report.sources.map((s) => [s.format, s.entries, s.error])).toEqual([
      ['hosts', 2, null],
      ['adblock', 2, null],
    ]);
    expect(report.totals.rules).toBe(4);
    expect(existsSync(join(dataDir(), 'blocklist.sqlite'))).toBe(true);
  });

  it('compile exits non-zero and names a source that does not exist', () => {
    const r = run(['compile', '--data-dir', join(workDir, 'never'), '--no-default-sources', '--no-bundled', '--source', './missing.txt#hosts', '--json']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/missing\.txt/);
  });

  it('compile --json prints a JSON error for a bad source or setting, and nothing else on stdout', () => {
    const missing = run(['compile', '--data-dir', join(workDir, 'never'), '--no-default-sources', '--no-bundled', '--source', './missing.txt#hosts', '--json']);
    expect(missing.status).toBe(2);
    const err = JSON.parse(missing.stdout) as { ok: boolean; error: string; problems: string[] };
    expect(err.ok).toBe(false);
    expect(err.problems).toEqual([expect.stringMatching(/source \.\/missing\.txt#hosts: no such file .*missing\.txt/)]);
    const badSetting = run(['compile', '--json', '--no-default-sources', '--no-bundled'], { env: { HUSHDNS_FETCH_TIMEOUT: 'soon' } });
    expect(badSetting.status).toBe(2);
    expect(JSON.parse(badSetting.stdout)).toMatchObject({ ok: false, problems: [expect.stringContaining('fetch-timeout = "soon" (from HUSHDNS_FETCH_TIMEOUT)')] });
  });

  it('a failed compile says nothing was written, in text and in JSON', () => {
    const dir = join(workDir, 'failed-compile');
    const args = ['compile', '--data-dir', dir, '--no-default-sources', '--no-bundled', '--source', 'http://127.0.0.1:9/list.txt#hosts', '--fetch-timeout', '500ms'];
    const text = run(args);
    expect(text.status).toBe(1);
    expect(text.stdout).toMatch(/nothing written after \d+\.\d\d s: .*blocklist\.sqlite is the table from before/);
    expect(text.stdout).not.toMatch(/MiB\)/);
    const json = run([...args, '--json']);
    expect(json.status).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, written: false, error: expect.stringMatching(/no source could be read/) });
  });

  it('shows live progress only when stdout is a terminal, and never with --json', () => {
    const args = ['compile', '--data-dir', join(workDir, 'progress'), '--no-default-sources', '--no-bundled', '--source', './hosts.txt#hosts'];
    // `script` gives the command a terminal; the redirection inside decides what stdout is.
    const inTerminal = (cmd: string) => run([], { shell: cmd });
    const command = [process.execPath, CLI, ...args].map((a) => `'${a}'`).join(' ');
    const tty = inTerminal(command);
    expect(tty.status, tty.stderr).toBe(0);
    expect(tty.stdout).toMatch(/\r\x1b\[Kread file-hosts\.txt: 2 entries/);
    expect(tty.stdout).toMatch(/written in/);
    // stderr on the terminal, stdout into a file: no progress anywhere.
    const out = join(workDir, 'progress-report.txt');
    const piped = inTerminal(`${command} > '${out}'`);
    expect(piped.status, piped.stderr).toBe(0);
    expect(piped.stdout + readFileSync(out, 'utf8')).not.toContain('\x1b[K');
    expect(readFileSync(out, 'utf8')).toMatch(/written in/);
    const json = inTerminal(`${command} --json`);
    expect(json.stdout).not.toContain('\x1b[K');
    expect(JSON.parse(json.stdout.replace(/\r\n/g, '\n'))).toMatchObject({ ok: true });
  });

  it('why shows the decision for a name and the list behind it', () => {
    const text = run(['why', 'sub.metrics.example.net', '--data-dir', dataDir()]);
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/^sub\.metrics\.example\.net: BLOCKED/);
    expect(text.stdout).toContain('rules.txt');
    const json = JSON.parse(run(['why', 'ok.metrics.example.net', '--data-dir', dataDir(), '--json']).stdout) as { decision: { action: string } };
    expect(json.decision.action).toBe('allow');
    const none = JSON.parse(run(['why', 'www.example.com', '--data-dir', dataDir(), '--json']).stdout) as { decision: { action: string } };
    expect(none.decision.action).toBe('none');
  });

  it('why takes names as people type them: Unicode, capitals, a trailing dot', () => {
    writeFileSync(join(workDir, 'idn.txt'), '||bücher.example^\n');
    const dir = join(workDir, 'idn-table');
    expect(run(['compile', '--data-dir', dir, '--no-default-sources', '--no-bundled', '--source', './idn.txt#adblock']).status).toBe(0);
    for (const name of ['bücher.example', 'www.BÜCHER.example.', 'xn--bcher-kva.example']) {
      const r = run(['why', name, '--data-dir', dir, '--json']);
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ decision: { action: 'block', ruleName: 'xn--bcher-kva.example' } });
    }
    const canary = run(['why', 'Use-Application-DNS.net.', '--data-dir', dir]);
    expect(canary.stdout).toMatch(/^use-application-dns\.net: not listed\n  hushdns answers this name itself/);
    const bad = run(['why', 'not a name', '--data-dir', dir]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/"not a name" is not a domain name \(bad-character\)/);
    expect(bad.stderr, 'a bad name is not a configuration problem').not.toMatch(/invalid configuration/);
    expect(bad.stderr).toBe('hushdns: "not a name" is not a domain name (bad-character)\n');
  });

  it('why and export find the table through --config and HUSHDNS_CONFIG like every other command', () => {
    const file = join(workDir, 'table-config.yaml');
    writeFileSync(file, `data-dir: ${dataDir()}\n`);
    const viaFlag = run(['why', 'sub.metrics.example.net', '--config', file]);
    expect(viaFlag.status, viaFlag.stderr).toBe(0);
    expect(viaFlag.stdout).toMatch(/BLOCKED/);
    const viaEnv = run(['export', '--format', 'domains'], { env: { HUSHDNS_CONFIG: file } });
    expect(viaEnv.status, viaEnv.stderr).toBe(0);
    expect(viaEnv.stdout).toMatch(/^tracker\.example\.org$/m);
    expect(run(['why', 'sub.metrics.example.net'], { env: { HUSHDNS_CONFIG: file } }).stdout).toMatch(/BLOCKED/);
    // The flag still beats the file.
    expect(run(['why', 'x.example.org', '--config', file, '--data-dir', join(workDir, 'empty')]).stderr).toMatch(/no compiled table at .*empty/);
    for (const command of ['why', 'export']) {
      const help = run([command, '--help']).stdout.replace(/\s+/g, ' ');
      expect(help).toContain('[default: ./data] [env: HUSHDNS_DATA_DIR]');
      expect(help).toContain('--config');
    }
  });

  it('compiles with inclusions from the config file, globally and per source', () => {
    writeFileSync(join(workDir, 'mixed.txt'), ['tracking.miui.com', 'ads.example.com', 'stats.example.com', 'other.example.net'].join('\n'));
    const file = join(workDir, 'include.yaml');
    writeFileSync(
      file,
      ['default-sources: false', 'bundled: false', 'include:', '  - "*.miui.com"', '  - "*.example.com"', 'sources:', "  - { path: ./mixed.txt, format: domains, include: ['/^(tracking|ads)\\./'] }"].join('\n'),
    );
    const dir = join(workDir, 'include-table');
    const r = run(['compile', '--config', file, '--data-dir', dir, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { sources: { entries: number; notIncluded: number }[] };
    expect(report.sources[0]).toMatchObject({ entries: 2, notIncluded: 2 });
    const domains = run(['export', '--format', 'domains', '--data-dir', dir]).stdout.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(domains.sort()).toEqual(['ads.example.com', 'tracking.miui.com']);
  });

  it('why without a compiled table says to compile first', () => {
    const r = run(['why', 'example.org', '--data-dir', join(workDir, 'empty')]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/no compiled table at .*; run `hushdns compile` first/);
  });

  it('export writes the table in the requested format to stdout or a file', () => {
    const hosts = run(['export', '--format', 'hosts', '--data-dir', dataDir()]);
    expect(hosts.status).toBe(0);
    const lines = hosts.stdout.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(lines).toEqual(expect.arrayContaining(['0.0.0.0 tracker.example.org', '0.0.0.0 ads.example.com', '0.0.0.0 metrics.example.net']));
    expect(hosts.stderr).toMatch(/exported \d+ entries/);
    const out = join(workDir, 'table.rpz');
    const rpz = run(['export', '--format', 'rpz', '--output', out, '--data-dir', dataDir()]);
    expect(rpz.status).toBe(0);
    expect(readFileSync(out, 'utf8')).toMatch(/^tracker\.example\.org\s+CNAME\s+\.$/m);
    const bad = run(['export', '--format', 'csv', '--data-dir', dataDir()]);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/Choices: "hosts", "domains", "adblock", "dnsmasq", "unbound", "rpz"/);
  });

  it('export to a file that cannot be written names the file, without a stack trace', () => {
    const out = join(workDir, 'no', 'such', 'dir', 'x.txt');
    const r = run(['export', '--format', 'domains', '-o', out, '--data-dir', dataDir()]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^hushdns: cannot write ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ENOENT`));
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).toBe('');
  });
});

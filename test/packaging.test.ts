// The files that package and deploy hushdns: Dockerfile, .dockerignore, compose.yaml, the systemd
// unit and the smoke script. No Docker engine runs here, so the Dockerfile is linted
// (dockerfile-utils) and read instruction by instruction; scripts/docker-smoke.sh builds it for real.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ConfigError, envName, FIELDS, loadConfig, type FieldName } from '../common/config.js';

const ROOT = resolve(import.meta.dirname, '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

interface Instruction {
  keyword: string;
  args: string;
  stage: number;
  line: number;
}

/** Instructions with continuation lines joined and comments dropped; `stage` counts FROMs (-1 before the first). */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let stage = -1;
  let pending = '';
  let startLine = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) return;
    if (pending !== '' && line.startsWith('#')) return; // comments inside a continued instruction
    if (pending === '') startLine = i + 1;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trim()} `;
      return;
    }
    const full = (pending + line).trim();
    pending = '';
    const space = full.search(/\s/);
    const keyword = (space === -1 ? full : full.slice(0, space)).toUpperCase();
    if (keyword === 'FROM') stage++;
    out.push({ keyword, args: space === -1 ? '' : full.slice(space + 1).trim(), stage, line: startLine });
  });
  return out;
}

/** The subset of .dockerignore matching the file uses: globs anchored at the context root; a directory match covers everything below. */
function dockerIgnored(patterns: string[], path: string): boolean {
  let ignored = false;
  for (const raw of patterns) {
    const negate = raw.startsWith('!');
    const pattern = (negate ? raw.slice(1) : raw).replace(/^\/+|\/+$/g, '');
    let body = '';
    for (let i = 0; i < pattern.length; i++) {
      const c = pattern[i];
      if (c === '*' && pattern[i + 1] === '*') {
        body += '.*';
        i++;
      } else if (c === '*') body += '[^/]*';
      else if (c === '?') body += '[^/]';
      else body += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
    const re = new RegExp(`^${body}(/.*)?$`);
    if (re.test(path)) ignored = !negate;
  }
  return ignored;
}

const dockerfile = parseDockerfile(read('Dockerfile'));
const dockerignore = read('.dockerignore')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));
const stages = dockerfile.filter((i) => i.keyword === 'FROM');
const stageNamed = (name: string) => stages.findIndex((i) => new RegExp(`\\s+AS\\s+${name}$`, 'i').test(i.args));
const inStage = (stage: number, keyword: string) => dockerfile.filter((i) => i.stage === stage && i.keyword === keyword);

describe('Dockerfile', () => {
  it('passes the dockerfile-utils linter with no error or warning', async (ctx) => {
    const moduleName = 'dockerfile-utils';
    const lib = (await import(/* @vite-ignore */ moduleName).catch(() => null)) as { validate(content: string): { message: string; severity?: number; range: { start: { line: number } } }[] } | null;
    if (!lib) {
      console.warn('packaging: dockerfile-utils is not installed (it belongs in devDependencies); the Dockerfile lint is skipped');
      ctx.skip();
      return;
    }
    const problems = lib.validate(read('Dockerfile')).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
    expect(problems).toEqual([]);
  });

  it('builds in a build stage and runs from a separate runtime stage, both on Debian slim Node images', () => {
    const build = stageNamed('build');
    const runtime = stageNamed('runtime');
    expect(build).toBeGreaterThanOrEqual(0);
    expect(runtime).toBeGreaterThan(build);
    expect(runtime).toBe(stages.length - 1);
    const bases = stages.map((s) => s.args.split(/\s+/)[0]).filter((image) => image.startsWith('node:'));
    expect(bases.length).toBeGreaterThan(0);
    for (const image of bases) {
      expect(image).toMatch(/-slim$/);
      expect(image).not.toMatch(/alpine/i);
    }
    // The stages the build and runtime start from resolve to those images (directly or by alias).
    const aliases = new Map(stages.map((s) => [s.args.split(/\s+AS\s+/i)[1]?.toLowerCase(), s.args.split(/\s+/)[0]]));
    for (const stage of [build, runtime]) {
      const from = stages[stage].args.split(/\s+/)[0];
      const base = from.startsWith('node:') ? from : aliases.get(from.replace(/\$\{TARGETARCH\}/, 'arm64').toLowerCase());
      expect(base, `stage ${stage} FROM ${from}`).toMatch(/^node:.*-slim$/);
    }
    const defaults = Object.fromEntries(dockerfile.filter((i) => i.stage === -1 && i.keyword === 'ARG').map((i) => i.args.split('=')));
    expect(Number(defaults.NODE_VERSION), 'NODE_VERSION: the current Node LTS').toBeGreaterThanOrEqual(22);
    expect(Number(defaults.NODE_VERSION) % 2, 'NODE_VERSION: LTS lines are even').toBe(0);
    expect(defaults.TARGETARCH, 'a default would shadow the platform BuildKit sets').toBeUndefined();
  });

  it('has a stage for each platform buildx is asked for (amd64, arm64, arm/v7)', () => {
    for (const arch of ['amd64', 'arm64', 'arm']) expect(stageNamed(`node-${arch}`), arch).toBeGreaterThanOrEqual(0);
    expect(read('Dockerfile')).toContain('--platform linux/amd64,linux/arm64,linux/arm/v7');
  });

  it('compiles native dependencies, builds and prunes in the build stage, in that order', () => {
    const runs = inStage(stageNamed('build'), 'RUN').map((i) => i.args);
    const at = (re: RegExp) => runs.findIndex((r) => re.test(r));
    const toolchain = at(/apt-get install\b.*\bpython3\b/);
    expect(toolchain).toBeGreaterThanOrEqual(0);
    for (const tool of ['python3', 'make', 'g\\+\\+']) expect(runs[toolchain]).toMatch(new RegExp(`\\s${tool}(\\s|$)`));
    const ci = at(/\bnpm ci\b/);
    const build = at(/\bnpm run build\b/);
    const prune = at(/\bnpm prune --omit=dev\b/);
    expect(toolchain).toBeLessThan(ci);
    expect(ci).toBeLessThan(build);
    expect(prune).toBeGreaterThanOrEqual(build);
    if (prune === build) expect(runs[build].indexOf('npm prune')).toBeGreaterThan(runs[build].indexOf('npm run build'));
  });

  it('puts only production dependencies, dist, the lists, the dashboard and package.json in the runtime stage', () => {
    const runtime = stageNamed('runtime');
    const copies = inStage(runtime, 'COPY').map((i) => i.args);
    for (const copy of copies) expect(copy, 'runtime files come from the build stage').toMatch(/^--from=build\s/);
    const sources = copies.map((c) => c.split(/\s+/)[1]);
    expect(sources.sort()).toEqual(['/app/dist', '/app/lists', '/app/node_modules', '/app/package.json', '/app/server/dashboard']);
    const runtimeRuns = inStage(runtime, 'RUN').map((i) => i.args).join('\n');
    expect(runtimeRuns).not.toMatch(/\bg\+\+|\bnpm (ci|install)\b/);
  });

  it('ships every file the code reads relative to the package root', () => {
    // Code finds its own files with join(PACKAGE_ROOT, …) or under LISTS_DIR; each such path must
    // lie in something the runtime stage copies, or the image fails only when that path is used.
    const shipped = inStage(stageNamed('runtime'), 'COPY').map((i) => i.args.split(/\s+/).pop()!.replace(/^\.\//, ''));
    const sourceFiles = ['cli.ts', ...['common', 'server', 'compiler'].flatMap((dir) => (readdirSync(join(ROOT, dir), { recursive: true }) as string[]).filter((f) => f.endsWith('.ts')).map((f) => `${dir}/${f}`))];
    const needed = new Set<string>();
    for (const file of sourceFiles) {
      for (const m of read(file).matchAll(/join\(PACKAGE_ROOT((?:,\s*'[^']+')+)/g)) needed.add([...m[1].matchAll(/'([^']+)'/g)].map((x) => x[1]).join('/'));
    }
    expect(needed.size).toBeGreaterThan(0);
    for (const path of needed) expect(shipped.some((dest) => path === dest || path.startsWith(`${dest}/`)), `${path} is read at run time but not copied into the image`).toBe(true);
  });

  it('runs as an unprivileged user that may still bind port 53', () => {
    const runtime = stageNamed('runtime');
    const users = inStage(runtime, 'USER');
    expect(users.length).toBeGreaterThan(0);
    const user = users[users.length - 1].args;
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    const entry = inStage(runtime, 'ENTRYPOINT')[0];
    expect(users[users.length - 1].line).toBeLessThan(entry.line);
    expect(inStage(runtime, 'RUN').map((i) => i.args).join('\n')).toMatch(/setcap cap_net_bind_service=\+ep /);
  });

  it('exposes DNS over UDP and TCP and the HTTP port, keeps its data in /data and checks its health', () => {
    const runtime = stageNamed('runtime');
    const exposed = inStage(runtime, 'EXPOSE').flatMap((i) => i.args.split(/\s+/));
    expect(exposed.sort()).toEqual(['53/tcp', '53/udp', '8080']);
    expect(inStage(runtime, 'VOLUME').map((i) => i.args)).toEqual(['/data']);
    expect(inStage(runtime, 'ENV').map((i) => i.args).join(' ')).toMatch(/(^|\s)HUSHDNS_DATA_DIR=\/data(\s|$)/);
    const health = inStage(runtime, 'HEALTHCHECK');
    expect(health).toHaveLength(1);
    expect(health[0].args).toMatch(/CMD \["node", "\/app\/dist\/cli\.js", "health"\]$/);
    const timeout = /--timeout=(\d+)s/.exec(health[0].args);
    expect(Number(timeout?.[1]), 'the health command waits 2 s per check; node needs time to start on a Pi').toBeGreaterThanOrEqual(5);
  });

  it('starts `node dist/cli.js serve` from its ENTRYPOINT and CMD', () => {
    const runtime = stageNamed('runtime');
    const entry = JSON.parse(inStage(runtime, 'ENTRYPOINT')[0].args) as string[];
    const cmd = JSON.parse(inStage(runtime, 'CMD')[0].args) as string[];
    expect([...entry, ...cmd]).toEqual(['node', '/app/dist/cli.js', 'serve']);
    expect(inStage(runtime, 'WORKDIR').map((i) => i.args)).toEqual(['/app']);
  });

  it('names in COPY only files that exist and that .dockerignore lets through', () => {
    const build = stageNamed('build');
    for (const copy of inStage(build, 'COPY')) {
      const parts = copy.args.split(/\s+/).filter((p) => !p.startsWith('--'));
      for (const source of parts.slice(0, -1)) {
        if (source === '.') continue;
        expect(existsSync(join(ROOT, source)), source).toBe(true);
        expect(dockerIgnored(dockerignore, source), `${source} is excluded by .dockerignore`).toBe(false);
      }
    }
  });
});

describe('.dockerignore', () => {
  it('keeps node_modules, data, dist, .git and test output out of the build context', () => {
    for (const path of ['node_modules', 'node_modules/better-sqlite3/build/Release/better_sqlite3.node', 'data', 'data/blocklist.sqlite', 'dist', 'dist/cli.js', '.git', '.git/HEAD', 'test-results']) {
      expect(dockerIgnored(dockerignore, path), path).toBe(true);
    }
  });

  it('lets through everything `npm run build` compiles and the image ships', () => {
    const tsconfig = JSON.parse(read('tsconfig.json')) as { include: string[] };
    const roots = new Set(tsconfig.include.map((p) => p.split('/')[0]));
    for (const path of [...roots, 'package.json', 'package-lock.json', 'tsconfig.json', 'lists', 'lists/vendors.json']) {
      expect(dockerIgnored(dockerignore, path), path).toBe(false);
    }
    for (const file of readdirSync(join(ROOT, 'lists'))) expect(dockerIgnored(dockerignore, `lists/${file}`), file).toBe(false);
  });
});

describe('compose.yaml', () => {
  const compose = parseYaml(read('compose.yaml')) as { services: Record<string, Record<string, unknown>>; volumes?: Record<string, unknown> };
  const service = compose.services?.hushdns ?? {};

  it('maps DNS over UDP and TCP and the HTTP port', () => {
    const ports = (service.ports as (string | { target: number; published?: number | string; protocol?: string })[]) ?? [];
    const mapped = ports.map((p) => {
      if (typeof p === 'string') {
        const [spec, protocol = 'tcp'] = p.split('/');
        return `${spec.split(':').pop()}/${protocol}`;
      }
      return `${p.target}/${p.protocol ?? 'tcp'}`;
    });
    expect(mapped.sort()).toEqual(['53/tcp', '53/udp', '8080/tcp']);
    // The alternative: host networking, documented in the file.
    expect(read('compose.yaml')).toMatch(/#\s*network_mode: host/);
  });

  it('keeps /data in a volume and restarts the service', () => {
    const volumes = (service.volumes as (string | { target: string; source?: string })[]) ?? [];
    const targets = volumes.map((v) => (typeof v === 'string' ? v.split(':')[1] : v.target));
    expect(targets).toContain('/data');
    const named = volumes.map((v) => (typeof v === 'string' ? v.split(':')[0] : v.source)).find((s) => s && !s.startsWith('.') && !s.startsWith('/'));
    if (named) expect(Object.keys(compose.volumes ?? {})).toContain(named);
    expect(service.restart).toMatch(/^(unless-stopped|always|on-failure)/);
  });

  it('lets the unprivileged user bind port 53 inside the container network', () => {
    const sysctls = service.sysctls as Record<string, unknown> | string[];
    const value = Array.isArray(sysctls) ? sysctls.find((s) => s.startsWith('net.ipv4.ip_unprivileged_port_start='))?.split('=')[1] : sysctls?.['net.ipv4.ip_unprivileged_port_start'];
    expect(Number(value)).toBeLessThanOrEqual(53);
  });

  it('sets only real HUSHDNS_* settings, with values the configuration accepts', () => {
    const env = service.environment as Record<string, string>;
    expect(Object.keys(env).length).toBeGreaterThan(0);
    const known = new Set(['HUSHDNS_CONFIG', ...(Object.keys(FIELDS) as FieldName[]).filter((n) => !('fileOnly' in FIELDS[n] && FIELDS[n].fileOnly)).map(envName)]);
    for (const key of Object.keys(env)) if (key.startsWith('HUSHDNS_')) expect(known.has(key), key).toBe(true);
    const asEnv = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)]));
    let problems: string[] = [];
    try {
      loadConfig({ env: asEnv });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems = err.problems;
    }
    expect(problems).toEqual([]);
  });
});

describe('documentation and deployment files', () => {
  it('mention only HUSHDNS_* variables that exist', () => {
    const known = new Set(['HUSHDNS_CONFIG', ...Object.keys(FIELDS).map(envName)]);
    const files = ['README.md', 'compose.yaml', 'Dockerfile', 'deploy/hushdns.service', 'scripts/docker-smoke.sh', ...readdirSync(join(ROOT, 'docs')).map((f) => `docs/${f}`)];
    for (const file of files) {
      for (const match of read(file).matchAll(/HUSHDNS_[A-Z0-9_]+/g)) expect(known.has(match[0]), `${match[0]} in ${file}`).toBe(true);
    }
  });

  it('has a systemd unit that runs the server unprivileged with only the port-53 capability', () => {
    const unit = read('deploy/hushdns.service');
    const entries = new Map<string, string[]>();
    for (const line of unit.split('\n')) {
      const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
      if (m) entries.set(m[1], [...(entries.get(m[1]) ?? []), m[2]]);
    }
    expect(entries.get('ExecStart')?.[0]).toMatch(/node \S*dist\/cli\.js serve$/);
    expect(entries.get('User')?.[0]).not.toMatch(/^(root|0)$/);
    expect(entries.get('AmbientCapabilities')).toEqual(['CAP_NET_BIND_SERVICE']);
    expect(entries.get('CapabilityBoundingSet')).toEqual(['CAP_NET_BIND_SERVICE']);
    expect(entries.get('ExecReload')?.[0]).toMatch(/kill -HUP \$MAINPID/);
    expect(entries.get('Environment')).toContain('HUSHDNS_DATA_DIR=/var/lib/hushdns');
    expect(entries.get('StateDirectory')).toEqual(['hushdns']);
    expect(entries.get('WantedBy')).toEqual(['multi-user.target']);
  });

  it('has a systemd unit that systemd-analyze verify accepts without unknown keys or bad values', (ctx) => {
    const probe = spawnSync('systemd-analyze', ['--version'], { stdio: 'ignore' });
    if (probe.status !== 0) {
      console.warn('packaging: systemd-analyze is not installed; the unit is only read, not verified');
      ctx.skip();
      return;
    }
    const r = spawnSync('systemd-analyze', ['verify', join(ROOT, 'deploy/hushdns.service')], { encoding: 'utf8', timeout: 20_000 });
    // Paths of this machine (is /usr/bin/node there?) are not the unit's business; syntax is.
    const syntax = r.stderr.split('\n').filter((l) => /Unknown (key|section)|Failed to parse|Invalid|Missing '='/i.test(l));
    expect(syntax).toEqual([]);
  });

  it('has an executable smoke script that builds with buildah (chroot isolation, vfs) and parses as bash', () => {
    const script = 'scripts/docker-smoke.sh';
    expect(statSync(join(ROOT, script)).mode & 0o111).not.toBe(0);
    const text = read(script);
    expect(text).toContain('--isolation chroot');
    expect(text).toContain('--storage-driver vfs');
    expect(text).toMatch(/debootstrap /);
    expect(text).toMatch(/node dist\/cli\.js --version/);
    execFileSync('bash', ['-n', join(ROOT, script)]);
  });
});

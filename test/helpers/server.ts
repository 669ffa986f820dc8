// Starts the real server in-process on loopback with a table compiled from the lists a test
// writes, and a fake upstream it controls.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../common/config.js';
import { createLogger } from '../../common/log.js';
import { compile } from '../../compiler/compile.js';
import { fromArgument, bundledSources, type SourceSpec } from '../../compiler/sources.js';
import { startServer, type RunningServer } from '../../server/server.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { tempDir } from './temp.js';

export { tempDir };

export interface TestServer {
  server: RunningServer;
  upstream: FakeUpstream;
  dataDir: string;
  udp4: { host: string; port: number };
  udp6: { host: string; port: number } | null;
  http: { host: string; port: number };
  /** Write lists and recompile into the running server's data dir (hot swap). */
  recompile(lists: Record<string, string>): Promise<void>;
  stop(): Promise<void>;
}

export interface TestServerOptions {
  /** file name (with #format suffix, e.g. 'ads.txt#adblock') → content */
  lists?: Record<string, string>;
  bundled?: boolean;
  flags?: Record<string, unknown>;
  ipv6?: boolean;
  allow?: string[];
  deny?: string[];
  /** Settings only a config file can carry (devices, querylog-exclude-*…), written to a JSON config file. */
  config?: Record<string, unknown>;
  /** Use this data folder (kept on stop) instead of a fresh temporary one: restarts on the same data. */
  dataDir?: string;
}

export async function compileLists(dataDir: string, lists: Record<string, string>, extra: { bundled?: boolean; allow?: string[]; deny?: string[] } = {}) {
  const sources: SourceSpec[] = extra.bundled ? bundledSources() : [];
  for (const [file, content] of Object.entries(lists)) {
    const [name, format] = file.split('#');
    const path = join(dataDir, name);
    writeFileSync(path, content);
    sources.push(fromArgument(format ? `${path}#${format}` : path, 'cli', []));
  }
  return compile({
    dataDir,
    sources,
    level: 'standard',
    exclude: [],
    allow: extra.allow ?? [],
    deny: extra.deny ?? [],
    fetch: { timeoutMs: 2000, maxBytes: 1 << 20, concurrency: 2 },
    compilerVersion: 'test',
  });
}

export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const dataDir = opts.dataDir ?? tempDir();
  const upstream = await startFakeUpstream();
  await compileLists(dataDir, opts.lists ?? {}, opts);
  let file: string | null = null;
  if (opts.config) {
    file = join(dataDir, 'test-config.json');
    writeFileSync(file, JSON.stringify(opts.config));
  }
  const listen = ['127.0.0.1:0', ...(opts.ipv6 === false ? [] : ['[::1]:0'])];
  const loaded = loadConfig({
    file,
    env: {},
    flags: {
      'data-dir': dataDir,
      'dns-listen': listen,
      'http-listen': '127.0.0.1:0',
      upstream: [`udp://127.0.0.1:${upstream.port}`],
      'upstream-timeout': '500ms',
      'refresh-interval': '0',
      'log-level': 'error',
      ...opts.flags,
    },
  });
  const server = await startServer(loaded, { log: createLogger('error') });
  const udp4 = server.dns.udp[0].address;
  const udp6 = server.dns.udp[1]?.address ?? null;
  return {
    server,
    upstream,
    dataDir,
    udp4,
    udp6,
    http: server.http!.address,
    recompile: async (lists) => {
      await compileLists(dataDir, lists, opts);
      server.blocklist.reload();
    },
    stop: async () => {
      await server.stop();
      await upstream.stop();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

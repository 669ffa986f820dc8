#!/usr/bin/env node
// The command line: thin. Each command turns flags into the typed config and calls the module
// that does the work.
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import yargs, { type Argv, type Options } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ConfigError, envName, FIELDS, formatDuration, loadConfig, type Config, type FieldDef, type FieldName, type LoadedConfig } from './common/config.js';
import { PACKAGE_VERSION } from './common/paths.js';
import { BLOCKLIST_FILE } from './common/schema.js';
import { compile, CompileError } from './compiler/compile.js';
import { exportTable } from './compiler/export.js';
import { formatReport } from './compiler/report.js';
import { SourceError, selectSources } from './compiler/sources.js';
import { ExclusionError } from './compiler/transforms/exclusions.js';
import { Blocklist, BlocklistError } from './server/blocklist.js';
import { runHealthCheck } from './server/health-check.js';
import { ListenError } from './server/listen/errors.js';
import { startServer } from './server/server.js';

type Scope = 'serve' | 'compile';

function withConfigFlags<T>(y: Argv<T>, ...scopes: Scope[]): Argv<T> {
  for (const [name, def] of Object.entries(FIELDS) as [FieldName, FieldDef][]) {
    if (def.fileOnly || (def.scope !== 'both' && !scopes.includes(def.scope))) continue;
    const shown = Array.isArray(def.default) ? (def.default as string[]).join(', ') || 'none' : String(def.default);
    const opt: Options = {
      describe: `${def.help} [default: ${shown}] [env: ${envName(name)}]`,
      type: def.kind === 'bool' ? 'boolean' : def.kind === 'int' ? 'number' : def.kind === 'list' ? 'array' : 'string',
      group: def.scope === 'compile' ? 'Compiler:' : def.scope === 'serve' ? 'Server:' : 'General:',
    };
    if (def.choices) opt.choices = [...def.choices];
    if (def.kind === 'list') opt.string = true;
    y = y.option(name, opt);
  }
  return y.option('config', { type: 'string', describe: `Config file (YAML or JSON) [env: HUSHDNS_CONFIG]`, group: 'General:' });
}

/** Only the flags the user typed, so that env and config file keep their precedence. */
function givenFlags(argv: Record<string, unknown>): Record<string, unknown> {
  const given: Record<string, unknown> = {};
  for (const name of Object.keys(FIELDS)) if (argv[name] !== undefined) given[name] = argv[name];
  return given;
}

function configFrom(argv: Record<string, unknown>): LoadedConfig {
  return loadConfig({ flags: givenFlags(argv), file: (argv.config as string | undefined) ?? null });
}

export async function runCompile(config: Config, configFile: string | null, json: boolean, live: boolean): Promise<number> {
  const dataDir = resolve(config['data-dir']);
  mkdirSync(dataDir, { recursive: true });
  const sources = selectSources({
    bundled: config.bundled,
    defaultSources: config['default-sources'],
    configSources: config.sources,
    cliSources: config.source as string[],
    configDir: configFile ? dirname(resolve(configFile)) : process.cwd(),
  });
  try {
    const report = await compile({
      dataDir,
      sources,
      level: config.level as 'standard' | 'strict',
      exclude: config.exclude as string[],
      allow: config.allow as string[],
      deny: config.deny as string[],
      fetch: { timeoutMs: config['fetch-timeout'], maxBytes: config['max-list-bytes'], concurrency: config['fetch-concurrency'] },
      compilerVersion: PACKAGE_VERSION,
      onProgress: live
        ? (e) => process.stderr.write(`\r\x1b[K${e.kind === 'fetched' ? `fetched ${e.id}: ${e.status}` : `parsed ${e.id}: ${e.entries} entries`}`)
        : undefined,
    });
    if (live) process.stderr.write('\r\x1b[K');
    process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report)}\n`);
    return 0;
  } catch (err) {
    if (live) process.stderr.write('\r\x1b[K');
    if (err instanceof CompileError) {
      if (json) process.stdout.write(`${JSON.stringify({ ok: false, error: err.message, ...err.report }, null, 2)}\n`);
      else if (err.report) process.stdout.write(`${formatReport(err.report)}\n`);
      process.stderr.write(`hushdns: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

async function main(): Promise<void> {
  const cli = yargs(hideBin(process.argv))
    .scriptName('hushdns')
    .usage('$0 <command> [options]\n\nDNS sinkhole for home networks: blocks phone, TV and app telemetry.')
    .command(
      'serve',
      'Answer DNS for the network (compiles the bundled lists first when no table exists)',
      (y) => withConfigFlags(y, 'serve'),
      async (argv) => {
        const loaded = configFrom(argv);
        await startServer(loaded, { installSignals: true });
      },
    )
    .command(
      'compile',
      'Fetch and merge the lists into DATA_DIR/blocklist.sqlite',
      (y) => withConfigFlags(y, 'compile').option('json', { type: 'boolean', describe: 'Print the report as JSON' }),
      async (argv) => {
        const loaded = configFrom(argv);
        process.exitCode = await runCompile(loaded.config, loaded.file, argv.json === true, process.stderr.isTTY === true && argv.json !== true);
      },
    )
    .command(
      'why <name>',
      'Show the decision for a name and every rule and list behind it',
      (y) =>
        y
          .positional('name', { type: 'string', demandOption: true })
          .option('data-dir', { type: 'string', describe: FIELDS['data-dir'].help })
          .option('json', { type: 'boolean' }),
      (argv) => {
        const bl = openTable(argv['data-dir']);
        const explanation = bl.explain(String(argv.name).toLowerCase().replace(/\.$/, ''));
        process.stdout.write(argv.json ? `${JSON.stringify(explanation, null, 2)}\n` : `${formatExplanation(explanation)}\n`);
        bl.close();
      },
    )
    .command(
      'export',
      'Write the compiled table as a list for another resolver',
      (y) =>
        y
          .option('format', { choices: ['hosts', 'domains', 'adblock', 'dnsmasq', 'unbound', 'rpz'] as const, demandOption: true })
          .option('output', { alias: 'o', type: 'string', describe: 'File to write (default: standard output)' })
          .option('data-dir', { type: 'string', describe: FIELDS['data-dir'].help }),
      async (argv) => {
        const dbPath = tablePath(argv['data-dir']);
        const out = argv.output ? createWriteStream(argv.output) : process.stdout;
        const res = await exportTable(dbPath, argv.format, out);
        if (argv.output) await new Promise<void>((r) => (out as ReturnType<typeof createWriteStream>).end(r));
        process.stderr.write(`exported ${res.written} entries${res.lossy ? ` (${res.lossy} could not be expressed exactly in ${argv.format})` : ''}\n`);
      },
    )
    .command('config <action>', 'Check or print the effective configuration', (y) =>
      withConfigFlags(y.positional('action', { choices: ['check', 'print'] as const, demandOption: true }), 'serve', 'compile'),
      (argv) => {
        const loaded = configFrom(argv);
        if (argv.action === 'check') {
          process.stdout.write(`configuration OK${loaded.file ? ` (${loaded.file})` : ''}\n`);
          return;
        }
        for (const name of Object.keys(FIELDS) as FieldName[]) {
          const v = loaded.config[name];
          const def = FIELDS[name];
          const shown = def.kind === 'duration' ? formatDuration(v as number) : JSON.stringify(v);
          process.stdout.write(`${name}: ${shown}  # ${loaded.origins[name]}\n`);
        }
      },
    )
    .command(
      'health',
      'Exit 0 when the running server answers DNS and HTTP, 1 otherwise (for container health checks)',
      (y) => withConfigFlags(y, 'serve').option('timeout', { type: 'number', default: 2000, describe: 'Milliseconds to wait' }),
      async (argv) => {
        const loaded = configFrom(argv);
        process.exitCode = await runHealthCheck(loaded.config, argv.timeout);
      },
    )
    .demandCommand(1, 'Name a command: serve, compile, why, export, config or health')
    .strict()
    .version(PACKAGE_VERSION)
    .help()
    .alias('h', 'help')
    .wrap(Math.min(120, process.stdout.columns ?? 100))
    .fail((msg, err: Error | undefined, y) => {
      if (err) throw err;
      process.stderr.write(`${y.help()}\n\nhushdns: ${msg}\n`);
      process.exit(2);
    });
  await cli.parseAsync();
}

function tablePath(dataDir: string | undefined): string {
  return join(resolve(dataDir ?? process.env.HUSHDNS_DATA_DIR ?? './data'), BLOCKLIST_FILE);
}

function openTable(dataDir: string | undefined): Blocklist {
  const path = tablePath(dataDir);
  if (!existsSync(path)) throw new BlocklistError(`no compiled table at ${path}; run \`hushdns compile\` first`, 'missing', path);
  return Blocklist.open(path);
}

function formatExplanation(e: ReturnType<Blocklist['explain']>): string {
  const d = e.decision;
  const verdict = d.action === 'block' ? 'BLOCKED' : d.action === 'allow' ? 'ALLOWED (explicitly)' : 'not listed (forwarded)';
  const lines = [`${e.name}: ${verdict}${d.action !== 'none' ? ` by ${d.reason}` : ''}${d.vendor ? `, vendor ${d.vendor}` : ''}`];
  if (e.rows.length > 0) {
    lines.push('', 'rules for the name and its parents (most specific first):');
    for (const row of e.rows) {
      for (const c of row.claims) {
        const mark = c.covers ? '*' : ' ';
        lines.push(` ${mark} ${row.name}  ${c.action} ${c.scope}${c.strong ? ' strong' : ''}  ${c.sources.map((s) => s.name).join(', ')}`);
      }
    }
    lines.push('  (* covers this name)');
  }
  if (e.patterns.length > 0) {
    lines.push('', 'matching patterns:');
    for (const p of e.patterns) lines.push(`   ${p.kind} ${p.pattern}  ${p.action}  ${p.sources.map((s) => s.name).join(', ')}`);
  }
  lines.push('', `table: ${e.table.path}, built ${new Date(e.table.builtAt).toISOString()}`);
  return lines.join('\n');
}

// `hushdns config print | head` closes the pipe early: that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

main().catch((err: unknown) => {
  if (
    err instanceof ConfigError ||
    err instanceof SourceError ||
    err instanceof ExclusionError ||
    err instanceof BlocklistError ||
    err instanceof CompileError ||
    err instanceof ListenError
  ) {
    process.stderr.write(`hushdns: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`hushdns: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});

#!/usr/bin/env node
// The command line: thin. Each command turns flags into the typed config and calls the module
// that does the work.
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import yargs, { type Argv, type Options } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ConfigError, envName, FIELDS, formatDuration, loadConfig, type FieldDef, type FieldName, type LoadedConfig } from './common/config.js';
import { canonicalName } from './common/names.js';
import { PACKAGE_VERSION } from './common/paths.js';
import { isSpecialName } from './common/special-names.js';
import { BLOCKLIST_FILE } from './common/schema.js';
import { compile, CompileError, type ProgressEvent } from './compiler/compile.js';
import { exportTable } from './compiler/export.js';
import { formatReport } from './compiler/report.js';
import { compileSettings } from './compiler/settings.js';
import { SourceError } from './compiler/sources.js';
import { MatcherError } from './compiler/transforms/matchers.js';
import { Blocklist, BlocklistError } from './server/blocklist.js';
import { ListenError } from './server/listen/errors.js';
import { parseUpstream } from './server/upstream/spec.js';

type Scope = 'serve' | 'compile';

/** A setting's flag help: what it does, its default and its environment twin. */
function describeField(name: FieldName): string {
  const def: FieldDef = FIELDS[name];
  const shown = Array.isArray(def.default) ? (def.default as string[]).join(', ') || 'none' : String(def.default);
  return `${def.help} [default: ${shown}] [env: ${envName(name)}]`;
}

const CONFIG_OPTION: Options = { type: 'string', describe: `Config file (YAML or JSON) [env: HUSHDNS_CONFIG]`, group: 'General:' };

function withConfigFlags<T>(y: Argv<T>, ...scopes: Scope[]): Argv<T> {
  for (const [name, def] of Object.entries(FIELDS) as [FieldName, FieldDef][]) {
    if (def.fileOnly || (def.scope !== 'both' && !scopes.includes(def.scope))) continue;
    const opt: Options = {
      describe: describeField(name),
      type: def.kind === 'bool' ? 'boolean' : def.kind === 'int' ? 'number' : def.kind === 'list' ? 'array' : 'string',
      group: def.scope === 'compile' ? 'Compiler:' : def.scope === 'serve' ? 'Server:' : 'General:',
    };
    if (def.choices) opt.choices = [...def.choices];
    if (def.kind === 'list') opt.string = true;
    y = y.option(name, opt);
  }
  return y.option('config', CONFIG_OPTION);
}

/** why and export read only the compiled table: its folder, from a flag, the environment or the config file. */
function withTableFlags<T>(y: Argv<T>): Argv<T> {
  return y.option('data-dir', { type: 'string', describe: describeField('data-dir'), group: 'General:' }).option('config', CONFIG_OPTION);
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

/** Errors that are the user's to fix (bad settings, sources, patterns): a message, never a stack trace. */
function isUsageError(err: unknown): err is ConfigError | SourceError | MatcherError {
  return err instanceof ConfigError || err instanceof SourceError || err instanceof MatcherError;
}

function problemsOf(err: ConfigError | SourceError | MatcherError | CompileError): string[] {
  return err instanceof CompileError ? [err.message] : err.problems;
}

function progressLine(e: ProgressEvent): string {
  return e.kind === 'fetched' ? `fetched ${e.id}: ${e.status}` : `read ${e.id}: ${e.entries.toLocaleString('en-US')} entries`;
}

/**
 * One `hushdns compile`. Live progress goes to stdout while it is a terminal and the report is
 * text; with --json, stdout carries exactly one JSON document, also when the compile fails.
 */
export async function runCompile(argv: Record<string, unknown>, json: boolean, live: boolean): Promise<number> {
  const printJson = (value: unknown) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  const clear = () => {
    if (live) process.stdout.write('\r\x1b[K');
  };
  try {
    const loaded = configFrom(argv);
    const settings = compileSettings(loaded.config, loaded.file);
    mkdirSync(settings.dataDir, { recursive: true });
    const report = await compile({
      ...settings,
      compilerVersion: PACKAGE_VERSION,
      onProgress: live ? (e) => process.stdout.write(`\r\x1b[K${progressLine(e)}`) : undefined,
    });
    clear();
    if (json) printJson(report);
    else process.stdout.write(`${formatReport(report)}\n`);
    return 0;
  } catch (err) {
    clear();
    if (!(err instanceof CompileError) && !isUsageError(err)) throw err;
    if (json) printJson({ ok: false, error: err.message, problems: problemsOf(err), ...(err instanceof CompileError ? err.report : null) });
    else if (err instanceof CompileError && err.report) process.stdout.write(`${formatReport(err.report)}\n`);
    process.stderr.write(`hushdns: ${err.message}\n`);
    // A compile that ran and failed is 1; settings that keep it from starting are 2, as for every command.
    return err instanceof CompileError && err.report ? 1 : 2;
  }
}

/**
 * Every check `serve` and `compile` make before they start, with the problems of both reported
 * together. The serve-side part calls the parsers serve uses (upstreams, local records).
 */
async function checkConfig(loaded: LoadedConfig): Promise<string[]> {
  const { parseLocalRecords } = await import('./server/stages/local.js');
  const config = loaded.config;
  const problems: string[] = [];
  (config.upstream as string[]).forEach((u, i) => {
    try {
      parseUpstream(u);
    } catch (err) {
      problems.push(`upstream[${i}] = ${JSON.stringify(u)}: ${(err as Error).message}`);
    }
  });
  if (config['local-upstream']) {
    try {
      parseUpstream(config['local-upstream']);
    } catch (err) {
      problems.push(`local-upstream = ${JSON.stringify(config['local-upstream'])}: ${(err as Error).message}`);
    }
  }
  problems.push(...parseLocalRecords(config['local-records']).problems);
  try {
    compileSettings(config, loaded.file);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }
  return problems;
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
        // The server's modules (undici, the wire layer) load only for the commands that use them.
        const { startServer } = await import('./server/server.js');
        await startServer(loaded, { installSignals: true });
      },
    )
    .command(
      'compile',
      'Fetch and merge the lists into DATA_DIR/blocklist.sqlite',
      (y) => withConfigFlags(y, 'compile').option('json', { type: 'boolean', describe: 'Print the report as JSON (also when the compile fails)' }),
      async (argv) => {
        const json = argv.json === true;
        process.exitCode = await runCompile(argv, json, !json && process.stdout.isTTY === true);
      },
    )
    .command(
      'why <name>',
      'Show the decision for a name and every rule and list behind it',
      (y) =>
        withTableFlags(y.positional('name', { type: 'string', demandOption: true, describe: 'A name as typed: any case, trailing dot, Unicode (IDN) or punycode' })).option('json', {
          type: 'boolean',
          describe: 'Print the explanation as JSON',
        }),
      (argv) => {
        const n = canonicalName(String(argv.name));
        if (!n.ok) throw new ConfigError([`${JSON.stringify(argv.name)} is not a domain name (${n.reason})`]);
        const bl = openTable(configFrom(argv).config['data-dir']);
        try {
          const explanation = bl.explain(n.name);
          process.stdout.write(argv.json ? `${JSON.stringify(explanation, null, 2)}\n` : `${formatExplanation(explanation)}\n`);
        } finally {
          bl.close();
        }
      },
    )
    .command(
      'export',
      'Write the compiled table as a list for another resolver',
      (y) =>
        y
          .option('format', { choices: ['hosts', 'domains', 'adblock', 'dnsmasq', 'unbound', 'rpz'] as const, demandOption: true })
          .option('output', { alias: 'o', type: 'string', describe: 'File to write (default: standard output)' })
          .option('data-dir', { type: 'string', describe: describeField('data-dir'), group: 'General:' })
          .option('config', CONFIG_OPTION),
      async (argv) => {
        const dbPath = tablePath(configFrom(argv).config['data-dir']);
        if (!existsSync(dbPath)) throw new BlocklistError(`no compiled table at ${dbPath}; run \`hushdns compile\` first`, 'missing', dbPath);
        const out = argv.output ? createWriteStream(argv.output) : process.stdout;
        const res = await exportTable(dbPath, argv.format, out);
        if (argv.output) await new Promise<void>((r) => (out as ReturnType<typeof createWriteStream>).end(r));
        process.stderr.write(`exported ${res.written} entries${res.lossy ? ` (${res.lossy} could not be expressed exactly in ${argv.format})` : ''}\n`);
      },
    )
    .command('config <action>', 'Check or print the effective configuration', (y) =>
      withConfigFlags(y.positional('action', { choices: ['check', 'print'] as const, demandOption: true }), 'serve', 'compile'),
      async (argv) => {
        const loaded = configFrom(argv);
        if (argv.action === 'check') {
          const problems = await checkConfig(loaded);
          if (problems.length > 0) throw new ConfigError(problems);
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
        const { runHealthCheck } = await import('./server/health-check.js');
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

function tablePath(dataDir: string): string {
  return join(resolve(dataDir), BLOCKLIST_FILE);
}

function openTable(dataDir: string): Blocklist {
  const path = tablePath(dataDir);
  if (!existsSync(path)) throw new BlocklistError(`no compiled table at ${path}; run \`hushdns compile\` first`, 'missing', path);
  return Blocklist.open(path);
}

function formatExplanation(e: ReturnType<Blocklist['explain']>): string {
  const d = e.decision;
  const special = isSpecialName(e.name);
  const verdict = d.action === 'block' ? 'BLOCKED' : d.action === 'allow' ? 'ALLOWED (explicitly)' : special ? 'not listed' : 'not listed (forwarded)';
  const lines = [`${e.name}: ${verdict}${d.action !== 'none' ? ` by ${d.reason}` : ''}${d.vendor ? `, vendor ${d.vendor}` : ''}`];
  if (special) lines.push('  hushdns answers this name itself (DoH canary, iCloud Private Relay or DDR signal) before any list is asked');
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
  if (isUsageError(err) || err instanceof BlocklistError || err instanceof CompileError || err instanceof ListenError) {
    process.stderr.write(`hushdns: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`hushdns: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});

#!/usr/bin/env node
// The command line: thin. Each command turns flags into the typed config and calls the module
// that does the work.
import yargs, { type Argv, type Options } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ConfigError, envName, FIELDS, formatDuration, loadConfig, type FieldDef, type FieldName, type LoadedConfig } from './common/config.js';
import { UserError } from './common/errors.js';
import { PACKAGE_VERSION } from './common/paths.js';

// Each command imports the modules it needs when it runs: `serve` never loads the compiler (nor
// `compile` the server), which keeps the long-running process small.

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
      type: def.kind === 'bool' ? 'boolean' : def.kind === 'int' && !def.auto ? 'number' : def.kind === 'list' ? 'array' : 'string',
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





/**
 * Every check `serve` and `compile` make before they start, with the problems of both reported
 * together, from the same functions they use.
 */
async function checkConfig(loaded: LoadedConfig): Promise<string[]> {
  const { serveProblems } = await import('./server/serve-config.js');
  const { compileProblems } = await import('./compiler/commands.js');
  return [...serveProblems(loaded.config), ...compileProblems(loaded)];
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
        const { serve } = await import('./server/server.js');
        await serve(loaded, { installSignals: true });
      },
    )
    .command(
      'compile',
      'Fetch and merge the lists into DATA_DIR/blocklist.sqlite',
      (y) => withConfigFlags(y, 'compile').option('json', { type: 'boolean', describe: 'Print the report as JSON (also when the compile fails)' }),
      async (argv) => {
        const json = argv.json === true;
        const { runCompile } = await import('./compiler/commands.js');
        process.exitCode = await runCompile(() => configFrom(argv), json, !json && process.stdout.isTTY === true);
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
      async (argv) => {
        const { runWhy } = await import('./compiler/commands.js');
        runWhy(String(argv.name), configFrom(argv).config['data-dir'], argv.json === true);
      },
    )
    .command(
      'export',
      'Write the compiled table as a list for another resolver',
      (y) =>
        withTableFlags(y)
          .option('format', { choices: ['hosts', 'domains', 'adblock', 'dnsmasq', 'unbound', 'rpz'] as const, demandOption: true })
          .option('output', { alias: 'o', type: 'string', describe: 'File to write (default: standard output)' }),
      async (argv) => {
        const { runExport } = await import('./compiler/commands.js');
        await runExport(configFrom(argv).config['data-dir'], argv.format, argv.output);
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
          const def: FieldDef = FIELDS[name];
          const shown = def.kind === 'duration' ? formatDuration(v as number) : def.auto && v === 0 ? 'auto' : JSON.stringify(v);
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




// `hushdns config print | head` closes the pipe early: that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

main().catch((err: unknown) => {
  if (err instanceof UserError) {
    process.stderr.write(`hushdns: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`hushdns: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});

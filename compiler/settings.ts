// From the validated configuration to one compile's options, with the checks only a compile can
// make (sources that exist, exclusion and inclusion patterns, the user's own entries). `hushdns
// compile` and `hushdns config check` both call this, so a config that passes the check compiles.
import { dirname, resolve } from 'node:path';
import { ConfigError, type Config } from '../common/config.js';
import { parseUserEntry } from '../common/names.js';
import type { CompileOptions } from './compile.js';
import { SourceError, selectSources } from './sources.js';
import { buildFilters } from './transforms/filter.js';
import { MatcherError } from './transforms/matchers.js';

export type CompileSettings = Omit<CompileOptions, 'onProgress' | 'catalog' | 'compilerVersion'>;

/** Throws ConfigError naming every problem at once. */
export function compileSettings(config: Config, configFile: string | null): CompileSettings {
  const problems: string[] = [];
  let sources: CompileOptions['sources'] = [];
  try {
    sources = selectSources({
      bundled: config.bundled,
      defaultSources: config['default-sources'],
      configSources: config.sources,
      cliSources: config.source as string[],
      configDir: configFile ? dirname(resolve(configFile)) : process.cwd(),
    });
  } catch (err) {
    if (!(err instanceof SourceError)) throw err;
    problems.push(...err.problems);
  }
  const exclude = config.exclude as string[];
  const include = config.include as string[];
  try {
    buildFilters({ exclude, include }, sources);
  } catch (err) {
    if (!(err instanceof MatcherError)) throw err;
    problems.push(...err.problems);
  }
  for (const key of ['allow', 'deny'] as const) {
    (config[key] as unknown[]).forEach((entry, i) => {
      const n = typeof entry === 'string' ? parseUserEntry(entry) : null;
      if (!n?.ok) problems.push(`${key}[${i}] = ${JSON.stringify(entry)}: expected a name such as ads.example.com (=ads.example.com for the name only)${n ? `, not ${n.reason}` : ''}`);
    });
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    dataDir: resolve(config['data-dir']),
    sources,
    level: config.level as 'standard' | 'strict',
    exclude,
    include,
    allow: config.allow as string[],
    deny: config.deny as string[],
    fetch: { timeoutMs: config['fetch-timeout'], maxBytes: config['max-list-bytes'], concurrency: config['fetch-concurrency'] },
  };
}

// Serve-only settings that need more than the generic field checks (upstream URLs, local
// records), parsed once: `serve` starts from the result, `config check` reports its problems.
import { ConfigError, type Config } from '../common/config.js';
import { parseLocalRecords, type LocalRecord } from './stages/local.js';
import { parseUpstream, type UpstreamSpec } from './upstream/spec.js';

export interface ServeSettings {
  upstreams: UpstreamSpec[];
  localRecords: LocalRecord[];
  /** The router for LAN names (--local-upstream), or null. */
  router: UpstreamSpec | null;
}

/** Every problem of the serve-only settings, together (empty when they are fine). */
export function serveProblems(config: Config): string[] {
  return parseServeSettings(config).problems;
}

/** The parsed serve settings; throws one ConfigError listing every problem. */
export function checkServeConfig(config: Config): ServeSettings {
  const { settings, problems } = parseServeSettings(config);
  if (problems.length > 0) throw new ConfigError(problems);
  return settings;
}

function parseServeSettings(config: Config): { settings: ServeSettings; problems: string[] } {
  const problems: string[] = [];
  const parse = (key: string, value: string): UpstreamSpec | null => {
    try {
      return parseUpstream(value);
    } catch (err) {
      problems.push(`${key} = ${JSON.stringify(value)}: ${(err as Error).message}`);
      return null;
    }
  };
  const upstreams = (config.upstream as string[]).flatMap((u, i) => parse(`upstream[${i}]`, u) ?? []);
  const router = config['local-upstream'] ? parse('local-upstream', config['local-upstream']) : null;
  const { records: localRecords, problems: recordProblems } = parseLocalRecords(config['local-records']);
  problems.push(...recordProblems);
  return { settings: { upstreams, localRecords, router }, problems };
}

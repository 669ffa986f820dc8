// The compiled table's commands as the CLI runs them: compile (with its report), why and export.
// cli.ts loads this module only for those commands, so `hushdns serve` never carries the compiler.
import { once } from 'node:events';
import { createWriteStream, existsSync, mkdirSync, type WriteStream } from 'node:fs';
import { join, resolve } from 'node:path';
import type { LoadedConfig } from '../common/config.js';
import { UserError } from '../common/errors.js';
import { canonicalName } from '../common/names.js';
import { PACKAGE_VERSION } from '../common/paths.js';
import { BLOCKLIST_FILE } from '../common/schema.js';
import { isSpecialName } from '../common/special-names.js';
import { Blocklist, BlocklistError } from '../server/blocklist.js';
import { compile, CompileError, type ProgressEvent } from './compile.js';
import { exportTable, type ExportFormat } from './export.js';
import { formatReport } from './report.js';
import { compileSettings } from './settings.js';

function problemsOf(err: UserError): string[] {
  const listed = (err as { problems?: unknown }).problems;
  return Array.isArray(listed) ? (listed as string[]) : [err.message];
}

function progressLine(e: ProgressEvent): string {
  return e.kind === 'fetched' ? `fetched ${e.id}: ${e.status}` : `read ${e.id}: ${e.entries.toLocaleString('en-US')} entries`;
}

/**
 * One `hushdns compile`. Live progress goes to stdout while it is a terminal and the report is
 * text; with --json, stdout carries exactly one JSON document, also when the compile fails.
 */
export async function runCompile(load: () => LoadedConfig, json: boolean, live: boolean): Promise<number> {
  const printJson = (value: unknown) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  const clear = () => {
    if (live) process.stdout.write('\r\x1b[K');
  };
  try {
    const loaded = load();
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
    if (!(err instanceof UserError)) throw err;
    const report = err instanceof CompileError ? err.report : null;
    if (json) printJson({ ok: false, error: err.message, problems: problemsOf(err), ...report });
    else if (report) process.stdout.write(`${formatReport(report)}\n`);
    process.stderr.write(`hushdns: ${err.message}\n`);
    // A compile that ran and failed is 1; settings that keep it from starting are 2, as for every command.
    return report ? 1 : 2;
  }
}

/** The compile-side problems of a configuration (sources, patterns), for `config check`. */
export function compileProblems(loaded: LoadedConfig): string[] {
  try {
    compileSettings(loaded.config, loaded.file);
    return [];
  } catch (err) {
    if (err instanceof UserError) return problemsOf(err);
    throw err;
  }
}

function tablePath(dataDir: string): string {
  return join(resolve(dataDir), BLOCKLIST_FILE);
}

/** The compiled table's path; a BlocklistError saying to compile first when there is none. */
function existingTablePath(dataDir: string): string {
  const path = tablePath(dataDir);
  if (!existsSync(path)) throw new BlocklistError(`no compiled table at ${path}; run \`hushdns compile\` first`, 'missing', path);
  return path;
}

function openTable(dataDir: string): Blocklist {
  return Blocklist.open(existingTablePath(dataDir));
}

/** An export's output file that cannot be written (no such folder, no permission). */
class OutputError extends UserError {
  readonly code = 'bad-output';
}

/** Opens `path` for writing, failing as an OutputError naming it before anything is read. */
async function openOutput(path: string): Promise<WriteStream> {
  const out = createWriteStream(path);
  try {
    await once(out, 'open');
  } catch (err) {
    throw new OutputError(`cannot write ${path}: ${(err as Error).message}`);
  }
  return out;
}

/** A name given on the command line that is not a domain name: the user's to fix, not the configuration's. */
class NameError extends UserError {
  readonly code = 'bad-name';
}

/** `hushdns why NAME`: the decision and every rule and pattern behind it, as text or JSON. */
export function runWhy(name: string, dataDir: string, json: boolean): void {
  const n = canonicalName(name);
  if (!n.ok) throw new NameError(`${JSON.stringify(name)} is not a domain name (${n.reason})`);
  const bl = openTable(dataDir);
  try {
    const explanation = bl.explain(n.name);
    process.stdout.write(json ? `${JSON.stringify(explanation, null, 2)}\n` : `${formatExplanation(explanation)}\n`);
  } finally {
    bl.close();
  }
}

/** `hushdns export --format F [-o FILE]`: the compiled table as a list for another resolver. */
export async function runExport(dataDir: string, format: ExportFormat, output: string | undefined): Promise<void> {
  const dbPath = existingTablePath(dataDir);
  const file = output ? await openOutput(output) : null;
  const res = await exportTable(dbPath, format, file ?? process.stdout);
  if (file) await new Promise<void>((r) => file.end(r));
  process.stderr.write(`exported ${res.written} entries${res.lossy ? ` (${res.lossy} could not be expressed exactly in ${format})` : ''}\n`);
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

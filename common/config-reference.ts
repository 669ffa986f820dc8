// The README's configuration reference, rendered from FIELDS so the two cannot drift apart:
// test/config-reference.test.ts fails when the README section differs from this output.
import { envName, FIELDS, formatDuration, type FieldDef, type FieldName } from './config.js';

export const REFERENCE_START = '<!-- config-reference:start -->';
export const REFERENCE_END = '<!-- config-reference:end -->';

/** Markdown for the README, between (not including) the marker comments. Deterministic. */
export function renderConfigReference(): string {
  const rows = (Object.entries(FIELDS) as [FieldName, FieldDef][]).map(([name, def]) => renderRow(name, def));
  return [
    '<!-- Generated from FIELDS in common/config.ts by common/config-reference.ts. Do not edit by hand:',
    '     run `UPDATE_README=1 npx vitest run test/config-reference.test.ts` after changing a setting. -->',
    '',
    `Every setting has one name, used as the config-file key and as the flag; the environment variable is`,
    `\`HUSHDNS_\` plus the name in capitals with \`_\` for \`-\`. When a setting is given in several places,`,
    `the flag wins over the environment, which wins over the config file (\`--config FILE\` or`,
    `\`HUSHDNS_CONFIG\`, YAML or JSON), which wins over the default. \`hushdns config print\` shows the`,
    `effective value of each setting and where it came from; \`hushdns config check\` validates without`,
    `starting and lists every problem at once.`,
    '',
    '- Durations: `500ms`, `2s`, `10m`, `24h`, `7d`; a bare number means seconds.',
    '- Sizes: `512KiB`, `64MiB`, `1GiB` (KB/MB/GB mean the same powers of 1024).',
    '- Switches: `true`/`false` (also `yes`/`no`, `on`/`off`, `1`/`0`); as flags `--name` and `--no-name`.',
    '- Lists: repeat the flag, separate with commas in the environment, a YAML or JSON list in the file.',
    '- Settings marked *file only* hold structured values and exist only in the config file.',
    '',
    '| setting | flag / environment | default | values | what it does |',
    '|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

/** `text` with the generated section replaced; throws when the markers are missing or out of order. */
export function replaceConfigReference(text: string): string {
  const { before, after } = splitAtMarkers(text);
  return `${before}${REFERENCE_START}\n${renderConfigReference()}\n${REFERENCE_END}${after}`;
}

/** The text between the markers, without the newline right after the start marker or before the end marker. */
export function extractConfigReference(text: string): string {
  const start = text.indexOf(REFERENCE_START);
  const end = text.indexOf(REFERENCE_END);
  if (start === -1 || end === -1 || end < start) throw new Error(`expected ${REFERENCE_START} … ${REFERENCE_END} in this order`);
  return text.slice(start + REFERENCE_START.length, end).replace(/^\n/, '').replace(/\n$/, '');
}

function splitAtMarkers(text: string): { before: string; after: string } {
  const start = text.indexOf(REFERENCE_START);
  const end = text.indexOf(REFERENCE_END);
  if (start === -1 || end === -1 || end < start) throw new Error(`expected ${REFERENCE_START} … ${REFERENCE_END} in this order`);
  return { before: text.slice(0, start), after: text.slice(end + REFERENCE_END.length) };
}

/** One table row. Exported for tests; `name` is any setting name. */
export function renderRow(name: string, def: FieldDef): string {
  // A default computed on the running machine (e.g. from the core count) is described in its help as
  // "(default: …)";
  // the reference shows that description, so the README does not depend on where it was generated.
  const described = /\s*\(default: ([^)]*)\)/.exec(def.help);
  const help = described ? def.help.replace(described[0], '') : def.help;
  const dflt = described ? described[1] : formatDefault(def);
  const where = def.fileOnly ? '*file only*' : `\`--${name}\`<br>\`${envName(name)}\``;
  return `| \`${name}\` | ${where} | ${dflt} | ${cell(describeValues(def))} | ${cell(help)} |`;
}

function formatDefault(def: FieldDef): string {
  const v = def.default;
  if (Array.isArray(v)) return v.length === 0 ? 'none' : v.map((x) => `\`${String(x)}\``).join(', ');
  if (v === '') return 'empty';
  if (typeof v === 'object' && v !== null) return Object.keys(v).length === 0 ? 'none' : `\`${JSON.stringify(v)}\``;
  return `\`${String(v)}\``;
}

function describeValues(def: FieldDef): string {
  const range = (unit: (n: number) => string) => {
    const parts: string[] = [];
    if (def.min !== undefined) parts.push(`≥ ${def.min === 0 ? '0' : unit(def.min)}`);
    if (def.max !== undefined) parts.push(`≤ ${unit(def.max)}`);
    return parts.length > 0 ? ` (${parts.join(', ')})` : '';
  };
  switch (def.kind) {
    case 'enum':
      return def.choices!.map((c) => `\`${c}\``).join(', ');
    case 'bool':
      return 'switch';
    case 'int':
      return `whole number${range(String)}${def.auto ? ' or `auto`' : ''}`;
    case 'duration':
      return `duration${range(formatDuration)}`;
    case 'bytes':
      return `size${range(bytesText)}`;
    case 'list':
      return 'list';
    case 'map':
      return 'mapping';
    default:
      return 'text';
  }
}

function bytesText(n: number): string {
  for (const [unit, f] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (n >= f && n % f === 0) return `${n / f}${unit}`;
  }
  return `${n} B`;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

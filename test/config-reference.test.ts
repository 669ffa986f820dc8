import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { envName, FIELDS, type FieldName } from '../common/config.js';
import { extractConfigReference, REFERENCE_END, REFERENCE_START, renderConfigReference, renderRow, replaceConfigReference } from '../common/config-reference.js';

const README = resolve(import.meta.dirname, '..', 'README.md');

describe('configuration reference', () => {
  it('in the README is exactly what common/config.ts defines (UPDATE_README=1 regenerates it)', () => {
    const text = readFileSync(README, 'utf8');
    if (process.env.UPDATE_README === '1') {
      const updated = replaceConfigReference(text);
      if (updated !== text) writeFileSync(README, updated);
      console.warn(`config reference: README.md ${updated !== text ? 'regenerated' : 'already up to date'}`);
      return;
    }
    const inReadme = extractConfigReference(text);
    // A readable failure: the first line that differs, then the fix.
    const want = renderConfigReference().split('\n');
    const have = inReadme.split('\n');
    const at = want.findIndex((line, i) => have[i] !== line);
    const firstDifference = at === -1 && have.length === want.length ? null : { line: at === -1 ? want.length : at, readme: have[at] ?? '(missing)', generated: want[at] ?? '(missing)' };
    expect(firstDifference, 'README.md configuration reference is stale: run `UPDATE_README=1 npx vitest run test/config-reference.test.ts`').toBeNull();
  });

  it('has one row per setting naming its flag and environment variable, or marking it file only', () => {
    const rendered = renderConfigReference();
    for (const [name, def] of Object.entries(FIELDS) as [FieldName, (typeof FIELDS)[FieldName]][]) {
      const row = rendered.split('\n').find((line) => line.startsWith(`| \`${name}\` |`));
      expect(row, name).toBeDefined();
      if ('fileOnly' in def && def.fileOnly) expect(row).toContain('*file only*');
      else {
        expect(row).toContain(`\`--${name}\``);
        expect(row).toContain(`\`${envName(name)}\``);
      }
    }
  });

  it('shows defaults as they are written in a config file and lists the allowed choices', () => {
    const rows = renderConfigReference().split('\n');
    const row = (name: string) => rows.find((line) => line.startsWith(`| \`${name}\` |`)) ?? '';
    expect(row('upstream-timeout')).toContain('`2s`');
    expect(row('upstream-timeout')).toContain('≥ 50ms');
    expect(row('cache-max-bytes')).toContain('`32MiB`');
    expect(row('block-mode')).toContain('`nxdomain`');
    expect(row('dns-listen')).toContain('`0.0.0.0:53`, `[::]:53`');
    expect(row('block-ip')).toContain('| none |');
    for (const line of rows) expect(line).not.toContain('[object Object]');
  });

  it('shows a default computed on the machine by its description, not by this machine\'s value', () => {
    const row = renderRow('threads', { kind: 'int', default: 7, min: 1, scope: 'serve', help: 'Threads to run (default: the number of cores, at most 4)' });
    expect(row).toBe('| `threads` | `--threads`<br>`HUSHDNS_THREADS` | the number of cores, at most 4 | whole number (≥ 1) | Threads to run |');
    for (const [name, def] of Object.entries(FIELDS) as [FieldName, (typeof FIELDS)[FieldName]][]) {
      if (def.help.includes('(default:')) expect(renderConfigReference()).not.toContain(`| \`${name}\` | \`--${name}\`<br>\`${envName(name)}\` | \`${String(def.default)}\``);
    }
  });

  it('replaces only the text between the markers', () => {
    const doc = `# Title\n\nintro\n\n${REFERENCE_START}\nold table\n${REFERENCE_END}\n\n## After\n`;
    const out = replaceConfigReference(doc);
    expect(out.startsWith(`# Title\n\nintro\n\n${REFERENCE_START}\n`)).toBe(true);
    expect(out.endsWith(`\n${REFERENCE_END}\n\n## After\n`)).toBe(true);
    expect(extractConfigReference(out)).toBe(renderConfigReference());
    expect(out).not.toContain('old table');
  });

  it('refuses a document whose markers are missing or reversed', () => {
    expect(() => extractConfigReference('# no markers here')).toThrow(/config-reference:start/);
    expect(() => replaceConfigReference(`${REFERENCE_END}\n${REFERENCE_START}`)).toThrow(/in this order/);
  });
});

// Shapes that flow through a compile: sources → lines → parsed lines → entries → table.

export const FORMATS = ['hosts', 'domains', 'adblock', 'wildcard', 'dnsmasq', 'unbound', 'rpz', 'regex'] as const;
export type ListFormat = (typeof FORMATS)[number];

export function isListFormat(s: string): s is ListFormat {
  return (FORMATS as readonly string[]).includes(s);
}

export type Action = 'block' | 'allow';
export type Scope = 'exact' | 'subtree';

/**
 * What one line of a list says, before the name is normalised.
 * - rule: a name (as written, possibly uppercase, IDN, trailing dot) with its action and scope;
 *   `important` marks adblock `$important` blocks, which beat list exceptions.
 * - pattern: a rule a suffix table cannot hold (Pi-hole regex, glob inside a label).
 * - skip: nothing to count (blank, comment, header, directive).
 * - unsupported: a valid rule of its format that DNS cannot express (cosmetic, URL path, content
 *   options); counted per reason, never widened into a block of the whole domain.
 * - invalid: a line that is not valid in its format; counted per reason.
 */
export type ParsedLine =
  | { kind: 'rule'; name: string; action: Action; scope: Scope; important?: boolean }
  | { kind: 'pattern'; patternKind: 'regex' | 'glob'; pattern: string; action: Action }
  | { kind: 'skip' }
  | { kind: 'unsupported'; reason: string }
  | { kind: 'invalid'; reason: string };

/**
 * A parser turns one line (no line terminator, BOM and `\r` already stripped) into what it says.
 * A line may hold several names (hosts: `0.0.0.0 a.example b.example`), hence the array form.
 */
export type LineParser = (line: string) => ParsedLine | ParsedLine[];

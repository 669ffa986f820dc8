// Is a downloaded body plausibly a list? Lists are text; what comes back when a list is down is
// often a captive-portal or error page (HTML) or something binary. One look at the first KB.

export const SNIFF_BYTES = 1024;

const HTML_MARKERS = ['<!doctype html', '<html', '<head', '<body'];

/** Share of control bytes above which the head counts as binary (text lists have almost none). */
const MAX_CONTROL_SHARE = 0.1;

/** Why `head` (the first SNIFF_BYTES of the decoded body) is not a list, or null when it may be one. */
export function whyNotAList(head: Buffer): { code: 'empty' | 'html' | 'binary'; reason: string } | null {
  if (head.length === 0) return { code: 'empty', reason: 'empty body' };
  let control = 0;
  for (let i = 0; i < head.length; i++) {
    const b = head[i]!;
    if (b === 0) return { code: 'binary', reason: `binary data (NUL byte at offset ${i})` };
    // \t \n \v \f \r are text; bytes ≥ 0x80 may be UTF-8 or Latin-1 text.
    if ((b < 0x20 && (b < 0x09 || b > 0x0d)) || b === 0x7f) control++;
  }
  if (control > head.length * MAX_CONTROL_SHARE) {
    return { code: 'binary', reason: `binary data (${control} of the first ${head.length} bytes are control bytes)` };
  }
  const text = head.toString('latin1').toLowerCase();
  for (const marker of HTML_MARKERS) {
    if (text.includes(marker)) return { code: 'html', reason: `an HTML page (found "${marker}" in the first KB), not a list` };
  }
  return null;
}

/** True when a Content-Type header says HTML. */
export function isHtmlContentType(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const semi = contentType.indexOf(';');
  const mime = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  return mime === 'text/html' || mime === 'application/xhtml+xml';
}

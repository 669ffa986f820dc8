// Domain names on the wire: walking (with compression), decoding to our presentation form, and
// encoding presentation text back to labels. Shared by the query parser, the response builders and
// the upstream-response inspector so all three agree on limits, escapes and pointer rules.
//
// Presentation form: lowercase, no trailing dot, '' for the root. Bytes other than [a-z0-9-_] are
// escaped (`\.` for a dot inside a label, `\DDD` for everything else, `\` included), so a label
// holding a dot can never pose as two labels when the name is matched against a blocklist.
import { HEADER_SIZE, MAX_LABEL, MAX_NAME_WIRE } from './constants.js';

/** Why a name could not be walked; negative so walkName can return them in place of an offset. */
export const NAME_ERR = {
  TRUNCATED: -1,
  BAD_LABEL_TYPE: -2, // length byte with top bits 01/10 (RFC 6891 §5 retired extended labels)
  TOO_LONG: -3, // more than 255 octets on the wire
  POINTER_FORWARD: -4,
  POINTER_LOOP: -5, // points back into the name being read (or chains without end)
  POINTER_HEADER: -6, // names never live in the 12-octet header
  POINTER_NOT_NAME: -7, // target is not a label boundary of an earlier name (tracked walks only)
} as const;

/** Human-readable reason for a NAME_ERR code, for FORMERR reasons and logs. */
export function nameErrorText(code: number): string {
  switch (code) {
    case NAME_ERR.TRUNCATED:
      return 'name runs past the end of the message';
    case NAME_ERR.BAD_LABEL_TYPE:
      return 'label length byte has reserved top bits';
    case NAME_ERR.TOO_LONG:
      return 'name is longer than 255 octets';
    case NAME_ERR.POINTER_FORWARD:
      return 'compression pointer points forward';
    case NAME_ERR.POINTER_LOOP:
      return 'compression pointer loops or its target overlaps the name';
    case NAME_ERR.POINTER_HEADER:
      return 'compression pointer points into the header';
    case NAME_ERR.POINTER_NOT_NAME:
      return 'compression pointer does not point at an earlier name';
    default:
      return `name error ${code}`;
  }
}

// Byte → output character for bytes that need no escape (uppercase folded to lowercase); 0 = escape.
const PLAIN = new Uint8Array(256);
for (let c = 0x61; c <= 0x7a; c++) PLAIN[c] = c;
for (let c = 0x41; c <= 0x5a; c++) PLAIN[c] = c + 0x20;
for (let c = 0x30; c <= 0x39; c++) PLAIN[c] = c;
PLAIN[0x2d] = 0x2d; // -
PLAIN[0x5f] = 0x5f; // _

// Decoded presentation text lands here; 4 output bytes per wire byte is the worst case (\DDD).
const scratch = Buffer.allocUnsafe(MAX_NAME_WIRE * 4 + 8);
let scratchLen = 0;

// A legal name has at most 127 labels; more jumps than that can only be a crafted chain.
const MAX_JUMPS = 128;

// Label boundaries of the names already walked in place in the current message (see beginMessage),
// stamped with a generation number so nothing needs clearing between messages. Pointers carry 14
// bits, so 16384 entries cover every possible target.
const boundaries = new Uint32Array(0x4000);
let generation = 0;

/**
 * Start a message whose names will be walked with `track`: from here on a compression pointer is
 * accepted only if it lands on a label boundary of a name already walked in place. Why: then a
 * name can only ever read octets that are themselves name octets, never a TTL, RDATA or an OPT, so
 * rewriting TTLs or removing the OPT cannot change what any name says.
 */
export function beginMessage(): void {
  generation = (generation + 1) >>> 0;
  if (generation === 0) {
    boundaries.fill(0);
    generation = 1;
  }
}

/**
 * Walk the name starting at `start`, following compression pointers, and return the offset just
 * past it in place (or a negative NAME_ERR code). Why one walker: every section and every RDATA
 * name goes through the same bounds, loop and length checks, so no caller can forget one.
 *
 * Pointer rule: each pointer must land at or after the header and strictly before the start of
 * the stretch currently being read, and the labels read there must end before that start.
 * Targets therefore strictly decrease, which excludes loops and forward references without a
 * visited set. `limit` bounds the in-place bytes (an RDATA end). With `decode`, the presentation
 * form is left for takeName(). With `track` (after beginMessage), in-place label boundaries are
 * recorded and pointers must land on one recorded earlier.
 */
export function walkName(msg: Buffer, start: number, limit: number, decode: boolean, track = false): number {
  let pos = start;
  let segStart = start;
  let end = limit;
  let after = -1; // offset past the in-place part, fixed by the first pointer
  let wire = 1; // the root octet
  let jumps = 0;
  let out = 0;
  for (;;) {
    if (pos >= end) return jumps > 0 ? NAME_ERR.POINTER_LOOP : NAME_ERR.TRUNCATED;
    const len = msg[pos];
    if (track && jumps === 0 && pos < 0x4000) boundaries[pos] = generation;
    if (len === 0) {
      if (after < 0) after = pos + 1;
      break;
    }
    const top = len & 0xc0;
    if (top === 0xc0) {
      if (pos + 1 >= end) return NAME_ERR.TRUNCATED;
      const target = ((len & 0x3f) << 8) | msg[pos + 1];
      if (target < HEADER_SIZE) return NAME_ERR.POINTER_HEADER;
      if (target >= segStart) return target > pos ? NAME_ERR.POINTER_FORWARD : NAME_ERR.POINTER_LOOP;
      if (track && boundaries[target] !== generation) return NAME_ERR.POINTER_NOT_NAME;
      if (++jumps > MAX_JUMPS) return NAME_ERR.POINTER_LOOP;
      if (after < 0) after = pos + 2;
      // The target's labels must end before the stretch that pointed at it began, as they do
      // when the target is a name written earlier.
      end = segStart;
      pos = target;
      segStart = target;
      continue;
    }
    if (top !== 0) return NAME_ERR.BAD_LABEL_TYPE;
    // len <= 63 here: the top two bits are clear.
    wire += len + 1;
    if (wire > MAX_NAME_WIRE) return NAME_ERR.TOO_LONG;
    const labelEnd = pos + 1 + len;
    if (labelEnd > end) return jumps > 0 ? NAME_ERR.POINTER_LOOP : NAME_ERR.TRUNCATED;
    if (decode) {
      if (out > 0) scratch[out++] = 0x2e;
      for (let i = pos + 1; i < labelEnd; i++) {
        const c = msg[i];
        const p = PLAIN[c];
        if (p !== 0) {
          scratch[out++] = p;
        } else {
          // Every other byte, '.' included, as \DDD: a label holding a dot must never split into
          // two labels where names are cut at dots (parents for blocklist matching).
          scratch[out++] = 0x5c;
          scratch[out++] = 0x30 + ((c / 100) | 0);
          scratch[out++] = 0x30 + (((c / 10) | 0) % 10);
          scratch[out++] = 0x30 + (c % 10);
        }
      }
    }
    pos = labelEnd;
  }
  scratchLen = out;
  return after;
}

/** The presentation form decoded by the last successful walkName(…, decode=true): one string allocation. */
export function takeName(): string {
  return scratchLen === 0 ? '' : scratch.toString('latin1', 0, scratchLen);
}

// Encoder scratch: escapes can make the text longer than the wire form, never the reverse.
const encodeScratch = Buffer.allocUnsafe(MAX_NAME_WIRE + 1);

/**
 * Presentation text → uncompressed wire labels, original case kept (0x20-randomised upstream
 * queries depend on that). Accepts a trailing dot, '' or '.' for the root, and the escapes our
 * decoder emits (`\.`, `\\`, `\DDD`). Throws a RangeError naming the input on empty or oversized
 * labels, names over 255 octets and non-Latin-1 characters: these are caller bugs or bad config.
 */
export function encodeName(name: string): Buffer {
  const n = name.length;
  if (n === 0 || (n === 1 && name.charCodeAt(0) === 0x2e)) return Buffer.from([0]);
  let out = 0;
  let lenPos = 0;
  encodeScratch[0] = 0;
  out = 1;
  let labelLen = 0;
  for (let i = 0; i < n; i++) {
    let c = name.charCodeAt(i);
    if (c === 0x2e) {
      if (labelLen === 0) throw new RangeError(`encodeName: empty label in ${JSON.stringify(name)}`);
      encodeScratch[lenPos] = labelLen;
      if (i === n - 1) {
        labelLen = -1; // trailing dot: the root terminator follows
        break;
      }
      lenPos = out;
      if (out >= MAX_NAME_WIRE) throw new RangeError(`encodeName: ${JSON.stringify(name)} is longer than 255 octets`);
      encodeScratch[out++] = 0;
      labelLen = 0;
      continue;
    }
    if (c === 0x5c) {
      if (i + 1 >= n) throw new RangeError(`encodeName: dangling backslash in ${JSON.stringify(name)}`);
      const d1 = name.charCodeAt(i + 1) - 0x30;
      if (d1 >= 0 && d1 <= 9) {
        const d2 = name.charCodeAt(i + 2) - 0x30;
        const d3 = name.charCodeAt(i + 3) - 0x30;
        if (!(d2 >= 0 && d2 <= 9 && d3 >= 0 && d3 <= 9)) throw new RangeError(`encodeName: bad \\DDD escape in ${JSON.stringify(name)}`);
        c = d1 * 100 + d2 * 10 + d3;
        if (c > 255) throw new RangeError(`encodeName: \\DDD escape above 255 in ${JSON.stringify(name)}`);
        i += 3;
      } else {
        c = name.charCodeAt(i + 1);
        i += 1;
      }
    }
    if (c > 255) throw new RangeError(`encodeName: non-Latin-1 character in ${JSON.stringify(name)} (convert IDNs to A-labels first)`);
    if (++labelLen > MAX_LABEL) throw new RangeError(`encodeName: label longer than 63 octets in ${JSON.stringify(name)}`);
    if (out >= MAX_NAME_WIRE) throw new RangeError(`encodeName: ${JSON.stringify(name)} is longer than 255 octets`);
    encodeScratch[out++] = c;
  }
  if (labelLen > 0) encodeScratch[lenPos] = labelLen;
  else if (labelLen === 0) throw new RangeError(`encodeName: empty label in ${JSON.stringify(name)}`);
  if (out >= MAX_NAME_WIRE) throw new RangeError(`encodeName: ${JSON.stringify(name)} is longer than 255 octets`);
  encodeScratch[out++] = 0;
  return Buffer.from(encodeScratch.subarray(0, out));
}

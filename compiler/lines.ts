// Turns a downloaded list (a stream of byte chunks) into lines without ever holding the whole file:
// UTF-8 is decoded in streaming mode so a character split across two chunks survives, and a line
// that never ends is cut off instead of growing without bound.

/**
 * Yielded in place of a line longer than `maxLineLength`. It starts with NUL, which no real line
 * of a list may contain, so it can never be mistaken for data; the parsers report it as
 * `invalid` with reason 'line-too-long' (see parse/common.ts). The line's text is dropped.
 */
export const TOO_LONG_LINE = '\u0000line-too-long';

/** Longest line kept, in UTF-16 code units. Real list lines are far shorter (hosts lines < 300). */
export const DEFAULT_MAX_LINE_LENGTH = 4096;

export interface SplitLinesOptions {
  maxLineLength?: number;
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * Cuts decoded text into lines at `\n`, `\r\n` and lone `\r`, across any number of pushes.
 * Lines are appended to a caller-owned array so the hot loop allocates only the line strings.
 */
class LineSplitter {
  private carry = '';
  /** Inside a line already reported as too long: drop text until its terminator. */
  private dropping = false;
  /** The previous push ended with `\r`; a `\n` opening the next push belongs to it. */
  private pendingCR = false;

  constructor(private readonly maxLineLength: number) {}

  push(text: string, out: string[]): void {
    const n = text.length;
    let start = 0;
    if (n === 0) return;
    if (this.pendingCR) {
      this.pendingCR = false;
      if (text.charCodeAt(0) === LF) start = 1;
    }
    if (text.indexOf('\r', start) === -1) {
      // Common case (LF-only files): let the engine's indexOf do the scanning.
      let i = text.indexOf('\n', start);
      while (i !== -1) {
        this.emit(text, start, i, out);
        start = i + 1;
        i = text.indexOf('\n', start);
      }
    } else {
      for (let i = start; i < n; i++) {
        const c = text.charCodeAt(i);
        if (c !== LF && c !== CR) continue;
        this.emit(text, start, i, out);
        if (c === CR) {
          if (i + 1 < n) {
            if (text.charCodeAt(i + 1) === LF) i++;
          } else {
            this.pendingCR = true;
          }
        }
        start = i + 1;
      }
    }
    if (start < n) this.hold(text.slice(start), out);
  }

  /** Flushes the last line of a file that does not end with a newline. */
  end(out: string[]): void {
    if (!this.dropping && this.carry.length > 0) out.push(this.carry);
    this.carry = '';
    this.dropping = false;
    this.pendingCR = false;
  }

  private emit(text: string, from: number, to: number, out: string[]): void {
    if (this.dropping) {
      this.dropping = false;
      return;
    }
    if (this.carry.length === 0) {
      out.push(to - from > this.maxLineLength ? TOO_LONG_LINE : text.slice(from, to));
      return;
    }
    const line = this.carry + text.slice(from, to);
    this.carry = '';
    out.push(line.length > this.maxLineLength ? TOO_LONG_LINE : line);
  }

  private hold(rest: string, out: string[]): void {
    if (this.dropping) return;
    this.carry = this.carry.length === 0 ? rest : this.carry + rest;
    if (this.carry.length > this.maxLineLength) {
      // Report now, keep nothing: the rest of this line is skipped as it arrives.
      out.push(TOO_LONG_LINE);
      this.carry = '';
      this.dropping = true;
    }
  }
}

function maxLength(opts: SplitLinesOptions | undefined): number {
  const max = opts?.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH;
  if (!Number.isInteger(max) || max < 1) throw new RangeError(`maxLineLength must be a positive integer, got ${max}`);
  return max;
}

/**
 * Lines of a UTF-8 byte stream, without terminators. A BOM is dropped, malformed bytes become
 * U+FFFD (the name checks reject them later), the last line counts even with no final newline,
 * and a line longer than `maxLineLength` comes out as {@link TOO_LONG_LINE}.
 * An empty line between two terminators is yielded as '' so line numbers stay right.
 *
 * Hand-written rather than an `async function*`: a generator pays a promise round trip per
 * line, which costs more than the splitting itself; this iterator answers from the current
 * chunk's lines with already-settled promises. Hot loops can go further with
 * {@link splitLineBatches}, which hands over one array per chunk.
 * Breaking out of a `for await` loop closes the source (e.g. the file stream).
 */
export function splitLines(chunks: AsyncIterable<Uint8Array>, opts?: SplitLinesOptions): AsyncGenerator<string, void, undefined> {
  return new LineIterator(chunks[Symbol.asyncIterator](), maxLength(opts));
}

/** The lines of each chunk as one array (same rules as {@link splitLines}); arrays may be empty. */
export async function* splitLineBatches(
  chunks: AsyncIterable<Uint8Array>,
  opts?: SplitLinesOptions,
): AsyncGenerator<string[], void, undefined> {
  const splitter = new LineSplitter(maxLength(opts));
  // ignoreBOM: false (the default) makes the decoder swallow a leading BOM.
  const decoder = new TextDecoder('utf-8');
  for await (const chunk of chunks) {
    const out: string[] = [];
    splitter.push(decoder.decode(chunk, { stream: true }), out);
    yield out;
  }
  const out: string[] = [];
  splitter.push(decoder.decode(), out);
  splitter.end(out);
  yield out;
}

const DONE: IteratorReturnResult<void> = Object.freeze({ value: undefined, done: true });

class LineIterator implements AsyncGenerator<string, void, undefined> {
  private readonly splitter: LineSplitter;
  // ignoreBOM: false (the default) makes the decoder swallow a leading BOM.
  private readonly decoder = new TextDecoder('utf-8');
  private lines: string[] = [];
  private index = 0;
  private finished = false;
  /** A refill in progress; a next() called before it settles waits for it, as a generator would. */
  private refilling: Promise<IteratorResult<string, void>> | null = null;

  constructor(
    private readonly source: AsyncIterator<Uint8Array>,
    maxLineLength: number,
  ) {
    this.splitter = new LineSplitter(maxLineLength);
  }

  next(): Promise<IteratorResult<string, void>> {
    if (this.refilling !== null) return this.refilling.then(() => this.next());
    if (this.index < this.lines.length) return Promise.resolve({ value: this.lines[this.index++]!, done: false });
    if (this.finished) return Promise.resolve(DONE);
    const refill = this.refill();
    this.refilling = refill;
    const clear = (): void => {
      if (this.refilling === refill) this.refilling = null;
    };
    refill.then(clear, clear);
    return refill;
  }

  private async refill(): Promise<IteratorResult<string, void>> {
    while (!this.finished) {
      this.lines = [];
      this.index = 0;
      const chunk = await this.source.next();
      if (chunk.done === true) {
        this.splitter.push(this.decoder.decode(), this.lines);
        this.splitter.end(this.lines);
        this.finished = true;
      } else {
        this.splitter.push(this.decoder.decode(chunk.value, { stream: true }), this.lines);
      }
      if (this.index < this.lines.length) return { value: this.lines[this.index++]!, done: false };
    }
    return DONE;
  }

  async return(): Promise<IteratorResult<string, void>> {
    if (!this.finished) {
      this.finished = true;
      this.lines = [];
      await this.source.return?.();
    }
    return DONE;
  }

  async throw(error: unknown): Promise<IteratorResult<string, void>> {
    await this.return();
    throw error;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/** The same line rules on a string already in memory (tests, small local files). */
export function splitLinesSync(text: string, opts?: SplitLinesOptions): string[] {
  const splitter = new LineSplitter(maxLength(opts));
  const out: string[] = [];
  splitter.push(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text, out);
  splitter.end(out);
  return out;
}

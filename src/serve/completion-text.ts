/**
 * The text of one generated choice, token by token: incremental detokenisation plus stop
 * strings. Text that could be the start of a stop string is held back, so a stop string is
 * never sent, and the streamed deltas always concatenate to the non-streamed text.
 */
import type { DecodeStream, PlumTokenizer } from '../model/tokenizer.js';

export class CompletionText {
  private readonly stream: DecodeStream;
  private text = '';
  private sent = 0;
  private stopped = false;

  /**
   * `prompt`: the prompt's ids, so that the first token decodes as it does after them (a
   * tokenizer that adds a space after a newline, or SentencePiece's leading "▁", would otherwise
   * put a stray space at the start of a chat reply or drop a real one).
   */
  constructor(
    tok: PlumTokenizer,
    private readonly stops: string[],
    prompt: number[] = [],
  ) {
    this.stream = tok.createDecodeStream({ skipSpecialTokens: true, context: prompt });
  }

  /** The final (or so far sent) text. */
  get value(): string {
    return this.text.slice(0, this.sent);
  }

  /** Add a generated token; returns the text that became safe to send and whether a stop string ended the choice. */
  push(id: number): { delta: string; stopped: boolean } {
    this.text += this.stream.push(id);
    return this.advance(false);
  }

  /** The choice ended (EOS, length): the rest of the text. */
  finish(): string {
    if (this.stopped) return '';
    this.text += this.stream.flush();
    return this.advance(true).delta;
  }

  private advance(final: boolean): { delta: string; stopped: boolean } {
    const hit = this.firstStop();
    if (hit >= 0) {
      this.text = this.text.slice(0, hit);
      this.stopped = true;
      return { delta: this.take(this.text.length), stopped: true };
    }
    return { delta: this.take(final ? this.text.length : this.text.length - this.heldBack()), stopped: false };
  }

  private take(end: number): string {
    const delta = this.text.slice(this.sent, Math.max(end, this.sent));
    this.sent += delta.length;
    return delta;
  }

  /** Earliest start of a stop string in the unsent text (a stop cannot start in sent text). */
  private firstStop(): number {
    let best = -1;
    for (const s of this.stops) {
      const i = this.text.indexOf(s, this.sent);
      if (i >= 0 && (best < 0 || i < best)) best = i;
    }
    return best;
  }

  /** Length of the longest end of the text that is a proper prefix of a stop string. */
  private heldBack(): number {
    let held = 0;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, this.text.length - this.sent); k > held; k--) {
        if (this.text.endsWith(s.slice(0, k))) {
          held = k;
          break;
        }
      }
    }
    return held;
  }
}

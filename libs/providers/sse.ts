// Incremental server-sent events parser (the parts of the WHATWG event-stream format a streaming
// API uses): feed it decoded text as it arrives, in chunks of any size, and it calls back once per
// complete event. Lines end in `\n`, `\r\n` or `\r` (also when the pair is split across chunks);
// `:` lines are comments; `data:` lines of one event are joined with `\n`; `event:` names the
// event; other fields (`id`, `retry`) are ignored. An event is dispatched at the blank line that
// ends it, and only when it carried data; an unterminated event at the end of a stream is dropped.

const LF = 10;
const COLON = 58;
const SPACE = 32;

export type SseListener = (event: string, data: string) => void;

export class SseParser {
  readonly #onEvent: SseListener;
  /** Unfinished line carried over from the previous chunk. */
  #rest = "";
  /** The previous chunk ended in `\r`: a `\n` starting the next one belongs to it. */
  #skipLf = false;
  #event = "";
  #data = "";
  #hasData = false;

  constructor(onEvent: SseListener) {
    this.#onEvent = onEvent;
  }

  /** Feeds decoded text (any split: mid-line, mid-event, several events at once). */
  push(chunk: string): void {
    const buf = this.#rest.length > 0 ? this.#rest + chunk : chunk;
    const len = buf.length;
    let pos = 0;
    if (this.#skipLf && len > 0) {
      this.#skipLf = false;
      if (buf.charCodeAt(0) === LF) pos = 1;
    }
    // Most streams never send `\r`; then one search per line is all the scanning there is.
    let cr = buf.indexOf("\r", pos);
    while (pos < len) {
      if (cr !== -1 && cr < pos) cr = buf.indexOf("\r", pos);
      const lf = buf.indexOf("\n", pos);
      let end: number;
      let next: number;
      if (cr !== -1 && (lf === -1 || cr < lf)) {
        end = cr;
        if (cr + 1 < len) {
          next = buf.charCodeAt(cr + 1) === LF ? cr + 2 : cr + 1;
        } else {
          next = len;
          this.#skipLf = true;
        }
      } else if (lf !== -1) {
        end = lf;
        next = lf + 1;
      } else {
        break;
      }
      this.#line(buf, pos, end);
      pos = next;
    }
    this.#rest = pos < len ? buf.slice(pos) : "";
  }

  #line(buf: string, start: number, end: number): void {
    if (start === end) {
      this.#dispatch();
      return;
    }
    const first = buf.charCodeAt(start);
    if (first === COLON) return;
    let colon = buf.indexOf(":", start);
    if (colon === -1 || colon > end) colon = end;
    let valueStart = colon + 1;
    if (valueStart < end && buf.charCodeAt(valueStart) === SPACE) valueStart++;
    const value = valueStart < end ? buf.slice(valueStart, end) : "";
    const fieldLength = colon - start;
    if (fieldLength === 4 && buf.startsWith("data", start)) {
      this.#data = this.#hasData ? `${this.#data}\n${value}` : value;
      this.#hasData = true;
    } else if (fieldLength === 5 && buf.startsWith("event", start)) {
      this.#event = value;
    }
  }

  #dispatch(): void {
    if (!this.#hasData) {
      this.#event = "";
      return;
    }
    const event = this.#event || "message";
    const data = this.#data;
    this.#event = "";
    this.#data = "";
    this.#hasData = false;
    this.#onEvent(event, data);
  }
}

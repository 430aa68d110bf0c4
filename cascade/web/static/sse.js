// Server-Sent Events read over fetch(), because a browser's EventSource cannot send an Authorization header.
// The parser follows WHATWG HTML, "Server-sent events" (9.2.6 Interpreting an event stream): lines end in CRLF, LF
// or CR; a line starting with ':' is a comment; a blank line dispatches the event if it has data; `id` sets the
// last event id (unless it holds NUL), `retry` the reconnection time (digits only).

import { apiFetch, errorOf } from './api.js';

export class EventStreamParser {
  constructor() {
    this.buffer = '';
    this.pendingCR = false;
    this.lastEventId = '';
    this.retry = null;
    this.reset();
  }

  reset() {
    this.type = '';
    this.data = [];
  }

  /** Feed decoded text; answers the events it completed: {type, data, id}. */
  push(text) {
    let chunk = text;
    if (this.pendingCR && chunk.startsWith('\n')) chunk = chunk.slice(1); // the LF of a CRLF split across chunks
    this.pendingCR = false;
    this.buffer += chunk;
    const events = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (match === null) break;
      // A CR at the very end may be the first half of a CRLF: the line ends here, the LF is dropped when it comes.
      if (match[0] === '\r' && match.index === this.buffer.length - 1) this.pendingCR = true;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const event = this.line(line);
      if (event !== null) events.push(event);
    }
    return events;
  }

  line(line) {
    if (line === '') {
      if (this.data.length === 0) {
        this.reset();
        return null;
      }
      const event = { type: this.type || 'message', data: this.data.join('\n'), id: this.lastEventId };
      this.reset();
      return event;
    }
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.type = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.lastEventId = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
    return null;
  }
}

const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason);
    });
  });

/**
 * A job's events, as {type, id, data (parsed JSON)}, until `isLast(event)`; a dropped stream is resumed with
 * Last-Event-ID after the server's `retry` time. Ends on a 204 (the job ended and every event was sent).
 * `onReconnect(attempt)` hears each reconnection. Throws the ApiError of a refused request, or after
 * `maxFailures` reconnections in a row that got nothing.
 */
export async function* jobEvents(url, { signal, isLast, onReconnect, maxFailures = 8 } = {}) {
  let lastEventId = '';
  let retryMs = 2000;
  let failures = 0;
  for (;;) {
    const headers = { Accept: 'text/event-stream' };
    if (lastEventId) headers['Last-Event-ID'] = lastEventId;
    let gotAny = false;
    try {
      const response = await apiFetch(url, { headers, signal, cache: 'no-store' });
      if (response.status === 204) return;
      if (!response.ok) throw await errorOf(response);
      const parser = new EventStreamParser();
      parser.lastEventId = lastEventId;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const raw of parser.push(value)) {
          gotAny = true;
          lastEventId = raw.id;
          let data = {};
          try {
            data = JSON.parse(raw.data);
          } catch {
            data = { text: raw.data };
          }
          const event = { type: raw.type, id: raw.id, data };
          yield event;
          if (isLast?.(event)) {
            reader.cancel().catch(() => {});
            return;
          }
        }
        if (parser.retry !== null) retryMs = parser.retry;
      }
    } catch (error) {
      // A refusal (4xx) or the caller's abort ends the stream; a dropped connection or a 5xx is retried.
      if (signal?.aborted || (error && typeof error.status === 'number' && error.status < 500)) throw error;
    }
    failures = gotAny ? 0 : failures + 1;
    if (failures > maxFailures) throw new Error('the event stream keeps dropping');
    onReconnect?.(failures);
    await sleep(retryMs, signal);
  }
}

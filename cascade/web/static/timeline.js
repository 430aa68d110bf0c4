// A generation's attempts drawn on a time axis: one row per attempt, its bar coloured by outcome, with the same
// facts as text (visible beside the bar, in its accessible name and tooltip, and below it when tapped).

import { clear, duration, el } from './dom.js';

const MEANING = {
  ok: 'served the image',
  skipped: 'skipped, not called',
  busy: 'busy, its queue was full',
  declined: 'declined, could not finish in time',
  timeout: 'timed out',
  error: 'failed',
  cancelled: 'stopped by a cancel',
  running: 'running',
};
export const OUTCOMES = Object.keys(MEANING);

const outcomeOf = (value) => (OUTCOMES.includes(value) ? value : 'error');
const ms = (value) => (Number.isFinite(value) && value > 0 ? value : 0);

function bar(attempt, startAt) {
  return {
    backend: String(attempt.backend ?? '?'),
    outcome: outcomeOf(attempt.outcome),
    error: typeof attempt.error === 'string' ? attempt.error : null,
    ms: ms(attempt.elapsed_ms),
    startAt,
  };
}

/** Bars for attempts known only by their times (the history API): the chain runs them one after another. */
export function sequentialBars(attempts) {
  let t = 0;
  return (attempts ?? []).map((attempt) => {
    const b = { ...bar(attempt, null), start: t };
    t += b.ms;
    return b;
  });
}

/** A job's attempts as its events tell them, on the board's clock (each event's `at`, Unix seconds). */
export class JobTimeline {
  constructor() {
    this.t0 = null;
    this.ended = [];
    this.open = null;
    this.lastAt = null;
    this.lastSeen = 0;
    this.finished = false;
  }

  note(type, data) {
    const at = Number.isFinite(data.at) ? data.at : null;
    if (at !== null) {
      this.lastAt = at;
      this.lastSeen = performance.now();
      if (this.t0 === null || type === 'started') this.t0 = at; // the axis starts when the job starts
    }
    if (type === 'attempt_started') {
      this.open = { backend: String(data.backend ?? '?'), at };
    } else if (type === 'attempt_ended') {
      // Skipped steps are never started: they end at once.
      const same = this.open !== null && this.open.backend === data.backend && this.open.at !== null;
      const elapsed = ms(data.elapsed_ms) / 1000;
      this.ended.push(bar(data, same ? this.open.at : at === null ? null : at - elapsed));
      this.open = null;
    } else if (['done', 'failed', 'cancelled', 'lost'].includes(type)) {
      this.finished = true;
      const attempts = Array.isArray(data.attempts) ? data.attempts : null;
      if (attempts !== null && attempts.length !== this.ended.length) {
        this.ended = attempts.map((a) => bar(a, null)); // events went missing: the ending's list is the record
      }
      if (this.open !== null && at !== null && this.open.at !== null) {
        const why = type === 'cancelled' ? 'cancelled while it ran' : String(data.error ?? type);
        this.ended.push({
          backend: this.open.backend,
          outcome: type === 'cancelled' ? 'cancelled' : 'error',
          error: why,
          ms: (at - this.open.at) * 1000,
          startAt: this.open.at,
          interrupted: true,
        });
      }
      this.open = null;
    }
  }

  /** The bars so far, with an attempt in flight drawn up to now. */
  bars() {
    const t0 = this.t0 ?? 0;
    let t = 0;
    const out = this.ended.map((b) => {
      const start = b.startAt === null ? t : Math.max(0, (b.startAt - t0) * 1000);
      t = start + b.ms;
      return { ...b, start };
    });
    if (this.open !== null && this.open.at !== null && this.lastAt !== null) {
      const now = this.lastAt + (performance.now() - this.lastSeen) / 1000;
      const start = Math.max(0, (this.open.at - t0) * 1000);
      out.push({ backend: this.open.backend, outcome: 'running', error: null, ms: (now - this.open.at) * 1000, start });
    }
    return out;
  }
}

/** Ticks 0, step, 2·step... up to `end`, the step a 1-2-5 multiple giving three to five intervals. */
export function ticks(end) {
  const raw = Math.max(end, 10) / 4;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const out = [];
  for (let t = 0; t <= end + 1e-9; t += step) out.push(t);
  return out;
}

export function describe(b, index) {
  const what = `${index + 1}. ${b.backend}: ${MEANING[b.outcome]}, ${duration(b.ms)}, from ${duration(b.start)}`;
  return b.error ? `${what}. ${b.error}` : what;
}

/** Draw `bars` into `container` (emptied first). */
export function renderTimeline(container, bars, { title = 'Attempts' } = {}) {
  clear(container);
  if (bars.length === 0) return;
  const span = Math.max(10, ...bars.map((b) => b.start + b.ms));
  const marks = ticks(span);
  const pct = (value) => `${Math.min(100, (value / span) * 100).toFixed(3)}%`;
  const detail = el('p', { class: 'tl-detail', 'aria-live': 'polite' });
  const show = (text) => () => {
    detail.textContent = text;
  };

  const rows = el('ol', { class: 'tl-rows' });
  bars.forEach((b, index) => {
    const text = describe(b, index);
    const shape = el('button', {
      type: 'button',
      class: `tl-bar tl-${b.outcome}`,
      title: text,
      'aria-label': text,
      onclick: show(text),
      onfocus: show(text),
    });
    shape.style.left = pct(b.start);
    shape.style.width = pct(b.ms);
    rows.append(
      el(
        'li',
        { class: 'tl-row', dataset: { backend: b.backend, outcome: b.outcome } },
        el(
          'span',
          { class: 'tl-label' },
          el('span', { class: 'tl-name', text: b.backend }),
          el('span', { class: 'tl-what', text: `${b.outcome} · ${duration(b.ms)}` }),
        ),
        el('span', { class: 'tl-track' }, shape),
      ),
    );
  });

  const axis = el('div', { class: 'tl-axis', 'aria-hidden': 'true' });
  for (const mark of marks) {
    // A label near the axis' end is drawn to the left of its mark, so it never sticks out of the page.
    const tick = el('span', { class: mark > span * 0.85 ? 'tl-tick tl-end' : 'tl-tick', text: duration(mark) });
    tick.style.left = pct(mark);
    axis.append(tick);
  }
  const present = OUTCOMES.filter((o) => bars.some((b) => b.outcome === o));
  const legend = el(
    'ul',
    { class: 'tl-legend', 'aria-hidden': 'true' },
    present.map((o) => el('li', {}, el('span', { class: `tl-swatch tl-${o}` }), o)),
  );
  container.append(
    el(
      'figure',
      { class: 'timeline' },
      el('figcaption', { text: `${title}: ${bars.length}, over ${duration(span)}. Tap a bar for its details.` }),
      rows,
      el('div', { class: 'tl-axis-row' }, el('span'), axis),
      legend,
      detail,
    ),
  );
}

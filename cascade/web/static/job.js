// One generation as a job: submitted, watched live over its event stream, cancellable, then shown with its
// attempts on a timeline.

import { api, appUrl, showImage } from './api.js';
import { $, clear, duration, el } from './dom.js';
import { jobEvents } from './sse.js';
import { JobTimeline, renderTimeline } from './timeline.js';

const ENDINGS = new Set(['done', 'failed', 'cancelled', 'lost']);
const MAX_LOG = 300;

function summary(type, data) {
  switch (type) {
    case 'attempt_started':
      return `trying ${data.backend}`;
    case 'progress':
      return `${data.backend}: step ${data.step} of ${data.total}`;
    case 'attempt_ended':
      return `${data.backend}: ${data.outcome} after ${duration(data.elapsed_ms)}${data.error ? ` (${data.error})` : ''}`;
    case 'done':
      return `served by ${data.result?.backend ?? '?'}`;
    case 'failed':
    case 'lost':
      return String(data.error ?? '');
    case 'cancelled':
      return data.interrupted ? `stopped ${data.interrupted}` : String(data.error ?? '');
    default:
      return '';
  }
}

export class JobView {
  /** `message(error)`: text for an error; `onEnd(status)`: the job ended (or could not start). */
  constructor({ message, onEnd }) {
    this.message = message;
    this.onEnd = onEnd;
    this.section = $('result');
    this.id = null;
    this.abort = null;
    this.timeline = null;
  }

  setStatus(status, text) {
    this.section.dataset.status = status;
    $('status').textContent = text;
  }

  showError(error) {
    const box = $('error');
    box.hidden = error === null;
    box.textContent = error === null ? '' : this.message(error);
  }

  reset(prompt) {
    this.id = null;
    this.showError(null);
    $('figure').hidden = true;
    $('image').removeAttribute('src');
    $('image').alt = prompt;
    $('progress-box').hidden = true;
    clear($('events'));
    clear($('timeline'));
    delete this.section.dataset.jobId;
  }

  async run(body) {
    this.reset(body.prompt);
    this.prompt = body.prompt;
    this.setStatus('submitting', 'Submitting…');
    const job = await api('api/jobs', { method: 'POST', json: body });
    this.id = String(job.id);
    this.section.dataset.jobId = this.id;
    this.timeline = new JobTimeline();
    this.abort = new AbortController();
    this.ended = false;
    const ticker = setInterval(() => this.draw(), 250);
    try {
      const events = jobEvents(`api/jobs/${encodeURIComponent(this.id)}/events`, {
        signal: this.abort.signal,
        isLast: (event) => ENDINGS.has(event.type),
        onReconnect: (n) => this.log('reconnecting', `stream dropped; resuming (${n})`),
      });
      for await (const event of events) this.on(event);
      if (!this.ended) {
        // The stream had nothing left to say (204): the job's record has the ending.
        const view = await api(`api/jobs/${encodeURIComponent(this.id)}`);
        this.on({ type: view.status, id: '', data: { ...view, at: view.ended_at } });
      }
    } finally {
      clearInterval(ticker);
      this.draw();
    }
  }

  async cancel() {
    if (this.id === null || this.ended) return;
    $('cancel').disabled = true;
    this.setStatus(this.section.dataset.status, 'Cancelling…');
    try {
      await api(`api/jobs/${encodeURIComponent(this.id)}`, { method: 'DELETE' });
    } catch (error) {
      if (error.status !== 409) this.showError(error); // 409: it ended first; the stream says how
    }
  }

  log(type, text, id = '') {
    const list = $('events');
    list.append(el('li', { dataset: { event: type, id } }, el('b', { text: type }), text ? ` ${text}` : ''));
    while (list.children.length > MAX_LOG) list.firstElementChild.remove();
  }

  draw() {
    if (this.timeline !== null) renderTimeline($('timeline'), this.timeline.bars(), { title: 'Attempts' });
  }

  on({ type, id, data }) {
    this.timeline.note(type, data);
    this.log(type, summary(type, data), id);
    const progress = $('progress');
    switch (type) {
      case 'queued':
        this.setStatus('queued', 'Queued: waiting for a free gateway replica…');
        break;
      case 'started':
        this.setStatus('running', 'Running…');
        break;
      case 'attempt_started':
        this.setStatus('running', `Trying ${data.backend}…`);
        break;
      case 'progress':
        $('progress-box').hidden = false;
        progress.max = Math.max(1, Number(data.total) || 1);
        progress.value = Math.min(progress.max, Number(data.step) || 0);
        $('progress-text').textContent = `${data.backend}: step ${data.step} of ${data.total}`;
        break;
      case 'attempt_ended':
        $('progress-box').hidden = true;
        break;
      case 'cancelling':
        this.setStatus('running', 'Cancelling: the backend stops at its next step…');
        break;
      default:
        if (ENDINGS.has(type)) this.end(type, data);
    }
    this.draw();
  }

  end(type, data) {
    this.ended = true;
    $('progress-box').hidden = true;
    if (type === 'done' && data.result) {
      this.show(data.result);
    } else if (type === 'cancelled') {
      this.setStatus('cancelled', 'Cancelled.');
    } else {
      this.setStatus(type, type === 'lost' ? 'Lost: the replica running it went away.' : 'Failed.');
      this.showError(new Error(String(data.error ?? type)));
    }
    this.onEnd(type);
  }

  show(result) {
    const url = appUrl(result.saved) ?? appUrl(result.dataUri);
    const img = $('image');
    if (url !== null) {
      showImage(img, url);
      $('image-link').href = url;
    }
    const bars = this.timeline.bars();
    const took = bars.length ? Math.max(...bars.map((b) => b.start + b.ms)) : 0;
    const who = result.provider === result.backend ? result.backend : `${result.backend} (${result.provider})`;
    $('caption').textContent =
      `${who} · ${result.width}×${result.height} · seed ${result.seed ?? 'none'} · ${duration(took)}`;
    $('figure').hidden = false;
    this.setStatus('done', `Done: ${result.backend} made it.`);
    if (result.save_error) this.showError(new Error(`Shown, but not saved: ${result.save_error}`));
  }
}

// The history: saved images newest first, a page at a time (the API's cursor), searchable by prompt and filtered
// by backend, each opening a detail view whose settings can be put back in the form.

import { api, appUrl, showImage } from './api.js';
import { $, clear, el } from './dom.js';
import { renderTimeline, sequentialBars } from './timeline.js';

const PAGE = 24;

function debounce(fn, ms) {
  let timer = null;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
}

export class Gallery {
  /** `onUse(record)`: put a record's settings in the form. `message(error)`: text for an error. */
  constructor({ onUse, message }) {
    this.list = $('gallery');
    this.status = $('gallery-status');
    this.more = $('gallery-more');
    this.q = $('gallery-q');
    this.backend = $('gallery-backend');
    this.sentinel = $('gallery-sentinel');
    this.message = message;
    this.cursor = null;
    this.loading = false;
    this.finished = false;
    this.generation = 0; // a new search makes the answers to older ones stale
    this.detail = new Detail({
      onUse,
      onDeleted: (id) => this.list.querySelector(`[data-id="${CSS.escape(id)}"]`)?.remove(),
      message,
    });
    this.q.addEventListener('input', debounce(() => this.reset(), 300));
    $('gallery-filters').addEventListener('submit', (event) => {
      event.preventDefault();
      this.reset();
    });
    this.backend.addEventListener('change', () => this.reset());
    this.more.addEventListener('click', () => this.next());
    new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && this.next(), {
      rootMargin: '300px',
    }).observe(this.sentinel);
  }

  setBackends(names) {
    const chosen = this.backend.value;
    this.backend.replaceChildren(el('option', { value: '', text: 'All backends' }));
    for (const name of names) this.backend.append(el('option', { value: name, text: name }));
    this.backend.value = names.includes(chosen) ? chosen : '';
  }

  reset() {
    this.generation += 1;
    this.cursor = null;
    this.finished = false;
    this.loading = false;
    clear(this.list);
    return this.next();
  }

  async next() {
    if (this.loading || this.finished) return;
    const generation = this.generation;
    this.loading = true;
    this.list.setAttribute('aria-busy', 'true');
    this.status.textContent = 'Loading…';
    const params = new URLSearchParams({ limit: String(PAGE) });
    if (this.cursor) params.set('cursor', this.cursor);
    if (this.q.value.trim()) params.set('q', this.q.value.trim());
    if (this.backend.value) params.set('backend', this.backend.value);
    try {
      const page = await api(`api/images?${params}`);
      if (generation !== this.generation) return;
      for (const record of page.items ?? []) this.list.append(this.tile(record));
      this.cursor = typeof page.next_cursor === 'string' ? page.next_cursor : null;
      this.finished = this.cursor === null;
      const count = this.list.children.length;
      const filtered = params.has('q') || params.has('backend');
      this.status.textContent =
        count === 0 ? (filtered ? 'No saved image matches.' : 'No saved images yet.') : `${count} shown${this.finished ? '' : ', more below'}.`;
    } catch (error) {
      if (generation === this.generation) {
        this.status.textContent = `History unavailable: ${this.message(error)}`;
        this.more.hidden = false; // "Load more" tries again
      }
      return;
    } finally {
      if (generation === this.generation) {
        this.loading = false;
        this.list.removeAttribute('aria-busy');
      }
    }
    this.more.hidden = this.finished;
    // The observer only speaks on a change: a short page may leave the sentinel in view with more to load.
    requestAnimationFrame(() => {
      if (!this.finished && this.sentinel.getBoundingClientRect().top < window.innerHeight + 300) this.next();
    });
  }

  tile(record) {
    const img = el('img', { alt: '', loading: 'lazy', decoding: 'async', width: record.width, height: record.height });
    const url = appUrl(record.url);
    if (url !== null) showImage(img, url);
    return el(
      'li',
      { class: 'tile', dataset: { id: String(record.id) } },
      el(
        'button',
        { type: 'button', class: 'tile-open', onclick: () => this.detail.open(record) },
        img,
        el('span', { class: 'tile-prompt', text: record.prompt }),
        el('span', { class: 'tile-meta', text: `${record.backend} · ${record.size}` }),
      ),
    );
  }
}

class Detail {
  constructor({ onUse, onDeleted, message }) {
    this.dialog = $('detail');
    this.record = null;
    this.message = message;
    $('detail-close').addEventListener('click', () => this.dialog.close());
    // A tap on the backdrop (outside the dialog's box) closes it, as on most sites.
    this.dialog.addEventListener('click', (event) => event.target === this.dialog && this.dialog.close());
    $('detail-use').addEventListener('click', () => {
      this.dialog.close();
      onUse(this.record);
    });
    $('detail-delete').addEventListener('click', async () => {
      const record = this.record;
      if (!window.confirm('Delete this image and its record?')) return;
      try {
        await api(`api/images/${encodeURIComponent(record.id)}`, { method: 'DELETE' });
        this.dialog.close();
        onDeleted(String(record.id));
      } catch (error) {
        $('detail-error').textContent = this.message(error);
      }
    });
  }

  open(record) {
    this.record = record;
    $('detail-error').textContent = '';
    this.dialog.dataset.id = String(record.id);
    const img = $('detail-image');
    const url = appUrl(record.url);
    img.alt = record.prompt;
    img.removeAttribute('src');
    if (url !== null) {
      showImage(img, url);
      $('detail-link').href = url;
    } else {
      $('detail-link').removeAttribute('href');
    }
    const created = new Date(record.created);
    const facts = [
      ['Prompt', record.prompt, 'prompt'],
      ['Negative prompt', record.negative_prompt, 'negative_prompt'],
      ['Seed', record.seed, 'seed'],
      ['Size', record.size, 'size'],
      ['Backend', record.backend, 'backend'],
      ['Provider', record.provider, 'provider'],
      ['Created', Number.isNaN(created.getTime()) ? record.created : created.toLocaleString(), 'created'],
    ];
    for (const [key, value] of Object.entries(record.meta ?? {})) {
      if (['string', 'number', 'boolean'].includes(typeof value)) facts.push([key, value, `meta-${key}`]);
    }
    clear($('detail-facts')).append(
      ...facts
        .filter(([, value]) => value !== null && value !== undefined && value !== '')
        .flatMap(([name, value, key]) => [el('dt', { text: name }), el('dd', { dataset: { fact: key }, text: value })]),
    );
    renderTimeline($('detail-timeline'), sequentialBars(record.attempts), { title: 'Attempts' });
    this.dialog.showModal();
  }
}

// The generate form: what it sends (the body of POST /api/jobs), the backends it offers, and "use these settings".

import { ApiError } from './api.js';
import { $, el } from './dom.js';

// A field the service names in an error (its `field`), and the inputs that hold it.
const INPUTS = {
  prompt: ['prompt'],
  size: ['size', 'width', 'height'],
  seed: ['seed'],
  backend: ['backend'],
  local: ['local'],
  negative_prompt: ['negative-prompt'],
  steps: ['steps'],
};

const fieldError = (field, text) => new ApiError(0, text, { field });

function integer(input, field, low, high) {
  const text = input.value.trim();
  if (text === '') return null;
  const value = Number(text);
  if (!Number.isInteger(value) || value < low || value > high) {
    throw fieldError(field, `${field}: a whole number from ${low} to ${high}`);
  }
  return value;
}

export class GenerateForm {
  constructor() {
    this.form = $('generate-form');
    this.prompt = $('prompt');
    this.size = $('size');
    this.width = $('width');
    this.height = $('height');
    this.seed = $('seed');
    this.backend = $('backend');
    this.local = $('local');
    this.negative = $('negative-prompt');
    this.steps = $('steps');
    this.backends = [];
    this.size.addEventListener('change', () => this.showCustom());
    this.local.addEventListener('change', () => this.applyLocal());
    $('random-seed').addEventListener('click', () => {
      this.seed.value = String(crypto.getRandomValues(new Uint32Array(1))[0]);
      this.seed.removeAttribute('aria-invalid');
    });
    this.form.addEventListener('input', (event) => event.target.removeAttribute('aria-invalid'));
    this.showCustom();
  }

  showCustom() {
    $('custom-size').hidden = this.size.value !== 'custom';
  }

  /** `list`: [{name, deployed, reason, remote}] in the chain's order. */
  setBackends(list) {
    this.backends = list;
    const chosen = this.backend.value;
    this.backend.replaceChildren(el('option', { value: '', text: 'Any: the fallback chain' }));
    for (const b of list) {
      const text = b.deployed ? b.name : `${b.name} (not deployed)`;
      this.backend.append(el('option', { value: b.name, text, title: b.reason ?? (b.remote ? 'remote' : null) }));
    }
    this.backend.value = chosen;
    this.applyLocal();
  }

  applyLocal() {
    for (const option of this.backend.options) {
      const b = this.backends.find((x) => x.name === option.value);
      if (b !== undefined) option.disabled = !b.deployed || (this.local.checked && b.remote);
    }
    if (this.backend.selectedOptions[0]?.disabled || this.backend.selectedIndex < 0) this.backend.value = '';
  }

  /** The request body, or a field error found before asking the service (it checks everything again). */
  read() {
    if (!this.prompt.value.trim()) throw fieldError('prompt', 'prompt: write what the image should show');
    const body = { prompt: this.prompt.value, size: this.sizeText(), local: this.local.checked };
    const seed = integer(this.seed, 'seed', 0, 2 ** 32 - 1);
    if (seed !== null) body.seed = seed;
    if (this.backend.value) body.backend = this.backend.value;
    if (this.negative.value.trim()) body.negative_prompt = this.negative.value;
    const steps = integer(this.steps, 'steps', 1, 200);
    if (steps !== null) body.steps = steps;
    return body;
  }

  sizeText() {
    if (this.size.value !== 'custom') return this.size.value;
    const width = integer(this.width, 'size', 1, 100000);
    const height = integer(this.height, 'size', 1, 100000);
    if (width === null || height === null) throw fieldError('size', 'size: give a width and a height');
    return `${width}x${height}`;
  }

  /** Mark the inputs behind a field the service refused (e.g. `size`, `translate.1`). */
  markInvalid(field) {
    const ids = INPUTS[String(field ?? '').split('.')[0]] ?? [];
    const visible = ids.map((id) => $(id)).filter((input) => !input.closest('[hidden]'));
    for (const input of visible) input.setAttribute('aria-invalid', 'true');
    visible[0]?.focus();
  }

  /** "Use these settings": a saved image's prompt, size, seed, backend and options. */
  fill(record) {
    this.prompt.value = record.prompt ?? '';
    this.negative.value = record.negative_prompt ?? '';
    this.seed.value = Number.isInteger(record.seed) ? String(record.seed) : '';
    const size = `${record.width}x${record.height}`;
    if ([...this.size.options].some((o) => o.value === size)) {
      this.size.value = size;
    } else {
      this.size.value = 'custom';
      this.width.value = String(record.width);
      this.height.value = String(record.height);
    }
    this.showCustom();
    const steps = record.meta?.steps;
    this.steps.value = Number.isInteger(steps) ? String(steps) : '';
    if (this.steps.value || this.negative.value) $('more-options').open = true;
    const backend = [...this.backend.options].find((o) => o.value === record.backend && !o.disabled);
    this.backend.value = backend ? backend.value : '';
    for (const input of this.form.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
    this.prompt.scrollIntoView({ block: 'center' });
    this.prompt.focus();
  }
}

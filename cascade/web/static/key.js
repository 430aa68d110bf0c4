// Key entry: shown when the service answers 401 (or from the header's button once a key matters), stored for this
// tab (sessionStorage) or on this device (localStorage) as the user chooses, and sent on every call (see api.js).

import { apiKey, validKey } from './api.js';
import { $ } from './dom.js';

export class KeyDialog {
  constructor() {
    this.dialog = $('key-dialog');
    this.input = $('key-input');
    this.remember = $('key-remember');
    this.button = $('key-button');
    this.pending = null;
    this.resolve = null;
    this.needed = false; // the service has asked for a key at least once
    $('key-form').addEventListener('submit', (event) => {
      event.preventDefault();
      this.save();
    });
    $('key-cancel').addEventListener('click', () => this.dialog.close());
    $('key-forget').addEventListener('click', () => {
      apiKey.forget();
      this.dialog.close();
    });
    this.dialog.addEventListener('close', () => this.settle(false));
    this.button.addEventListener('click', () => this.ask(null));
    this.refresh();
  }

  refresh() {
    const key = apiKey.get();
    this.button.hidden = key === null && !this.needed;
    this.button.textContent = key === null ? 'API key' : 'API key: set';
    $('key-forget').hidden = key === null;
  }

  /** Ask for a key (`error`: the 401 that calls for it). Resolves true once one is set, false if dismissed. */
  ask(error) {
    if (error !== null) this.needed = true;
    this.refresh();
    if (this.pending !== null) return this.pending; // several calls refused at once: one question
    let why = 'Every call to the service will carry this key.';
    if (error !== null) {
      why = apiKey.get() === null ? `This service needs an API key: ${error.message}` : `The key was refused: ${error.message}`;
    }
    $('key-message').textContent = why;
    $('key-error').textContent = '';
    this.input.value = '';
    this.remember.checked = apiKey.remembered();
    this.pending = new Promise((resolve) => {
      this.resolve = resolve;
    });
    this.dialog.showModal();
    this.input.focus();
    return this.pending;
  }

  save() {
    const key = this.input.value.trim();
    if (!validKey(key)) {
      $('key-error').textContent = 'A key is printable characters with no spaces.';
      return;
    }
    apiKey.set(key, this.remember.checked);
    this.settle(true);
    this.dialog.close();
  }

  settle(answer) {
    const resolve = this.resolve;
    this.resolve = null;
    this.pending = null;
    this.refresh();
    resolve?.(answer);
  }
}

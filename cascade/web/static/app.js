// The page's entry point: wires the form, the running job, the history and key entry together.

import { ApiError, api, onUnauthorized } from './api.js';
import { $ } from './dom.js';
import { GenerateForm } from './form.js';
import { Gallery } from './gallery.js';
import { JobView } from './job.js';
import { KeyDialog } from './key.js';

/** Text for an error: the service's own words, with when to retry where it says (a 429's Retry-After). */
function message(error) {
  if (error instanceof ApiError) {
    const retry = error.status === 429 && error.retryAfter !== null ? ` Try again in ${error.retryAfter} s.` : '';
    return `${error.message}${retry}`;
  }
  if (error instanceof TypeError) return `the service did not answer (${error.message})`;
  return String(error?.message ?? error);
}

/** What can serve, in the chain's order: from /healthz, or from /v1/models where health is not open to us. */
async function backends() {
  try {
    const health = await api('healthz');
    return (health.order ?? []).map((name) => {
      const b = health.backends?.[name] ?? {};
      return { name: String(name), deployed: b.deployed !== false, reason: b.reason ?? null, remote: b.remote === true };
    });
  } catch {
    const models = await api('v1/models');
    return (models.data ?? [])
      .map((m) => String(m.id))
      .filter((id) => id !== 'cascade')
      .map((name) => ({ name, deployed: true, reason: null, remote: false }));
  }
}

function main() {
  const key = new KeyDialog();
  onUnauthorized((error) => key.ask(error));
  const form = new GenerateForm();
  const gallery = new Gallery({ onUse: (record) => form.fill(record), message });
  const generate = $('generate');
  const cancel = $('cancel');
  const job = new JobView({
    message,
    onEnd: (status) => {
      cancel.disabled = true;
      if (status === 'done') gallery.reset();
    },
  });

  form.form.addEventListener('submit', async (event) => {
    event.preventDefault();
    let body;
    try {
      body = form.read();
    } catch (error) {
      job.showError(error);
      form.markInvalid(error.field);
      return;
    }
    generate.disabled = true;
    cancel.disabled = false;
    // On a phone the result is below the form: bring it into view so the progress is seen.
    const result = $('result');
    if (result.getBoundingClientRect().top > window.innerHeight * 0.6) result.scrollIntoView({ block: 'start' });
    try {
      await job.run(body);
    } catch (error) {
      job.setStatus('error', 'Not started.');
      job.showError(error);
      if (error instanceof ApiError && error.field) form.markInvalid(error.field);
    } finally {
      generate.disabled = false;
      cancel.disabled = true;
    }
  });
  cancel.addEventListener('click', () => job.cancel());

  backends()
    .then((list) => {
      form.setBackends(list);
      gallery.setBackends(list.map((b) => b.name));
    })
    .catch((error) => {
      $('backend-note').textContent = `Backends unknown (${message(error)}): the whole chain is used.`;
    });
  gallery.reset();
  document.documentElement.dataset.ready = 'true';
}

main();

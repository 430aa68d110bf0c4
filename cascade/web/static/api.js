// Calls to the service: every one carries the API key when one is set, and a 401 asks for a key (then retries).
// All paths are relative to the page, so the page works under any route prefix.

const KEY_NAME = 'cascade.apiKey';
const memory = new Map(); // when the browser refuses storage (some private modes)

function store(kind) {
  try {
    const s = kind === 'local' ? window.localStorage : window.sessionStorage;
    s.getItem(KEY_NAME);
    return s;
  } catch {
    return null;
  }
}

/** The API key: in localStorage when the user chose to remember it on this device, else for this tab only. */
export const apiKey = {
  get() {
    return store('session')?.getItem(KEY_NAME) ?? store('local')?.getItem(KEY_NAME) ?? memory.get(KEY_NAME) ?? null;
  },
  remembered() {
    return (store('local')?.getItem(KEY_NAME) ?? null) !== null;
  },
  set(key, remember) {
    this.forget();
    const target = store(remember ? 'local' : 'session');
    if (target) target.setItem(KEY_NAME, key);
    else memory.set(KEY_NAME, key);
  },
  forget() {
    store('local')?.removeItem(KEY_NAME);
    store('session')?.removeItem(KEY_NAME);
    memory.delete(KEY_NAME);
  },
};

/** A key goes into a header: printable ASCII, no spaces (what `Authorization: Bearer <key>` can carry). */
export function validKey(text) {
  return /^[\x21-\x7e]{1,512}$/.test(text);
}

export class ApiError extends Error {
  constructor(status, message, extra = {}) {
    super(message);
    this.status = status;
    this.field = extra.field ?? null;
    this.retryAfter = extra.retryAfter ?? null;
    this.attempts = extra.attempts ?? null;
  }
}

/** The error a non-2xx answer carries: the gateway's {error, field}, OpenAI's {error: {message, param}}, or text. */
export async function errorOf(response) {
  let message = `${response.status} ${response.statusText}`.trim();
  let field = null;
  let attempts = null;
  try {
    const body = await response.json();
    if (body && typeof body.error === 'string') {
      message = body.error;
      field = typeof body.field === 'string' ? body.field : null;
      attempts = Array.isArray(body.attempts) ? body.attempts : null;
    } else if (body && body.error && typeof body.error.message === 'string') {
      message = body.error.message;
      field = typeof body.error.param === 'string' ? body.error.param : null;
    }
  } catch {
    // not JSON: the status line says enough
  }
  const retry = Number.parseInt(response.headers.get('retry-after') ?? '', 10);
  return new ApiError(response.status, message, { field, attempts, retryAfter: Number.isFinite(retry) ? retry : null });
}

let askForKey = null;

/** `handler(error)` is called on a 401; it resolves true once the user gave a key (the call is then retried). */
export function onUnauthorized(handler) {
  askForKey = handler;
}

/** fetch() with the key; a 401 asks for one and tries again. Answers the Response, whatever its status. */
export async function apiFetch(path, init = {}) {
  for (let tries = 0; ; tries += 1) {
    const headers = new Headers(init.headers ?? {});
    const key = apiKey.get();
    if (key !== null) headers.set('Authorization', `Bearer ${key}`);
    const response = await fetch(path, { ...init, headers, credentials: 'same-origin' });
    if (response.status !== 401 || askForKey === null || tries >= 5) return response;
    if (!(await askForKey(await errorOf(response)))) return response;
  }
}

/** JSON in (`json`), JSON out; a non-2xx answer throws its ApiError. */
export async function api(path, { method = 'GET', json, signal } = {}) {
  const init = { method, signal, headers: { Accept: 'application/json' } };
  if (json !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(json);
  }
  const response = await apiFetch(path, init);
  if (!response.ok) throw await errorOf(response);
  return response.status === 204 ? null : response.json();
}

/**
 * A URL the page may load for a path the server gave (`/generated/x.png`, relative to the service's root): made
 * relative to the page, so it stays under the route prefix. Anything else (another origin, a script URL) is null.
 */
export function appUrl(path) {
  if (typeof path !== 'string') return null;
  if (/^data:image\/(png|jpeg|webp|svg\+xml);base64,/.test(path)) return path;
  if (!path.startsWith('/') || path.startsWith('//')) return null;
  const url = new URL(path.slice(1), document.baseURI);
  return url.origin === window.location.origin ? url.href : null;
}

/**
 * Show a server image in `img`. Images are links anyone may open; should the service ask for a key for them too, a
 * failed load is fetched again with the key and shown from a blob.
 */
export function showImage(img, url) {
  img.dataset.retried = '';
  img.onerror = async () => {
    if (img.dataset.retried || apiKey.get() === null || url.startsWith('data:')) return;
    img.dataset.retried = 'yes';
    const response = await apiFetch(url);
    if (response.ok) {
      const blob = URL.createObjectURL(await response.blob());
      img.addEventListener('load', () => URL.revokeObjectURL(blob), { once: true });
      img.src = blob;
    }
  };
  img.src = url;
}

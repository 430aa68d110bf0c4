// Building DOM from data the server sent: text goes in as text nodes (never parsed as HTML), so a hostile prompt
// shows as the characters it is. Nothing in this page uses innerHTML.

/**
 * el('p', {class: 'x', dataset: {id}}, 'text', child) -> <p class="x" data-id=...>text<child></p>.
 * Keys: class, text, dataset, on<event> (a function), anything else an attribute (true: present, null/false: left out).
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = String(value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

export function $(id) {
  const node = document.getElementById(id);
  if (node === null) throw new Error(`the page has no #${id}`);
  return node;
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

/** "850 ms", "1.2 s", "2 min 5 s". */
export function duration(ms) {
  if (!Number.isFinite(ms)) return '?';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 1 : 0)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

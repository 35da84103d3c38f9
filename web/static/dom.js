// DOM helpers. Everything the service returns is inserted as text, never as
// HTML, so a name or a query result cannot inject markup.

/**
 * h('button', {type: 'button', class: 'btn', onclick: fn}, 'Text', childNode)
 * Attributes whose value is false, null or undefined are left out; true sets
 * an empty attribute. Keys starting with "on" add event listeners.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class') {
      el.className = v;
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else if (k === 'checked' || k === 'value' || k === 'disabled' || k === 'selected') {
      el[k] = v;
      if (k === 'disabled' || k === 'checked' || k === 'selected') el.toggleAttribute(k, Boolean(v));
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export const $ = (id) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page element #${id} is missing`);
  return el;
};

/**
 * A pair of live regions beside a control: one role="status" for results,
 * one role="alert" for errors. Showing one clears the other.
 */
export class ActionMessage {
  constructor(statusEl, errorEl) {
    this.statusEl = statusEl;
    this.errorEl = errorEl;
  }

  static byIds(statusId, errorId) {
    return new ActionMessage($(statusId), $(errorId));
  }

  ok(text) {
    this.errorEl.textContent = '';
    this.statusEl.textContent = text;
    reveal(this.statusEl);
  }

  error(text) {
    this.statusEl.textContent = '';
    this.errorEl.textContent = text;
    reveal(this.errorEl);
  }

  clear() {
    this.statusEl.textContent = '';
    this.errorEl.textContent = '';
  }
}

// On a small screen a message may appear below the fold (or the dialog's
// fold): bring it into view, moving as little as possible.
function reveal(el) {
  if (el.isConnected && el.offsetParent !== null) el.scrollIntoView({ block: 'nearest' });
}

/**
 * Runs fn with the button disabled and a busy label, then restores it.
 */
export async function busy(button, label, fn) {
  const original = button.textContent;
  const wasDisabled = button.disabled;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  if (label) button.textContent = label;
  try {
    return await fn();
  } finally {
    button.textContent = original;
    button.disabled = wasDisabled;
    button.removeAttribute('aria-busy');
  }
}

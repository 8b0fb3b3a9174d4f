// A tiny element builder: text always goes in as text (never HTML), so no flag content can inject markup.

/**
 * h("button", {type: "button", dataset: {action: "toggle"}, onclick: fn}, "Label", child, [more])
 * Props: `class`, `dataset`, `on<event>` handlers, boolean `hidden`/`disabled`/..., any other attribute.
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "dataset") Object.assign(element.dataset, value);
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "value") element.value = value;
    else if (name === "checked") element.checked = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

/** Replace an element's children; null, undefined and false are skipped (replaceChildren would write "null"). */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else element.append(child instanceof Node ? child : String(child));
  }
}

let counter = 0;
/** A document-unique id, for label/aria-describedby pairs. */
export const uid = (prefix) => `${prefix}-${++counter}`;

function relative(iso) {
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}

/** A <time> saying how long ago `iso` was ("3 min ago"; its title: the exact local time). */
export function timeAgo(iso) {
  return h("time", { datetime: iso, title: new Date(iso).toLocaleString() }, relative(iso));
}

/** Bring every "… ago" on the page up to date (a page left open must not say "just now" for hours). */
export function refreshTimes() {
  for (const element of document.querySelectorAll("time[datetime]")) element.textContent = relative(element.dateTime);
}

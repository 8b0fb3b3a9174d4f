// The console: sign-in, the flag list, a flag's page, the create form; live through the event stream.
//
// Views are chosen by the URL's hash (#/, #/flags/<key>, #/new), so the page works under any path prefix.
// Every write sends If-Match with the version the person saw; a 412 shows the newer state and asks again.

import { ApiError, api, eventStreamUrl, flagPath, listFlags, listen, signWith, token } from "./api.js";
import { fill, h, refreshTimes, timeAgo } from "./dom.js";
import { ChannelEventSource } from "./flag-channel.js";
import { FlagEditor, definitionOf, draftOf, newDraft, problemsOf } from "./editor.js";
import { CognitoSession, signInConfig } from "./signin.js";
import { changes, summary } from "./values.js";

const $ = (selector) => document.querySelector(selector);
const main = $("#main");
const DEGRADED_TEXT = "Experiencing slower response times";
const DEGRADED_POLL_MS = 2000; // while degraded, a light list read finds out when answers are normal again
const STREAM_RETRY_MS = 5000; // a closed stream: ask for a fresh URL (a new token) this long after, doubling while
const NO_STREAM_RETRY_MS = 60000; // it never opens, up to this; none advertised (its credential unreadable?): this
const CLOSED = 2; // EventSource.CLOSED, as the push channel's adapter uses it too

const state = {
  started: false,
  flags: new Map(), // key -> flag, in the service's key order
  query: "",
  view: null, // the flag page on screen ({key, ...}), or null
  degraded: false,
};

// ---- Notices, alerts and the degraded toast --------------------------------------------------------

let noticeTimer;
function notice(text) {
  const element = $("[data-notice]");
  element.textContent = text;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (element.textContent = ""), 6000);
}

function describe(error) {
  if (!(error instanceof ApiError)) return String(error);
  const code = error.code ? `${error.code}: ` : "";
  return error.status ? `${code}${error.details} (HTTP ${error.status})` : error.details;
}

function alertError(what, error) {
  const box = $("[data-alert]");
  box.replaceChildren(
    h("span", {}, `${what}: ${describe(error)}`),
    h("button", { type: "button", class: "quiet", onclick: () => (box.hidden = true) }, "Dismiss"),
  );
  box.hidden = false;
}

let degradedPoll;
function setDegraded(degraded) {
  if (degraded === state.degraded) return;
  state.degraded = degraded;
  $("[data-toast]").textContent = degraded ? DEGRADED_TEXT : "";
  clearInterval(degradedPoll);
  if (degraded) degradedPoll = setInterval(() => refresh().catch(() => {}), DEGRADED_POLL_MS);
}

// ---- The confirmation dialog ------------------------------------------------------------------------

/** Ask in the modal dialog; resolves true on confirm. `confirm: null` shows only the cancel button. */
function ask({ title, body, confirm = "Confirm", cancel = "Cancel" }) {
  const dialog = $("[data-dialog]");
  const opener = document.activeElement;
  $("[data-dialog-title]").textContent = title;
  $("[data-dialog-body]").replaceChildren(...body.filter(Boolean));
  const confirmButton = dialog.querySelector('[data-action="confirm"]');
  confirmButton.textContent = confirm ?? "";
  confirmButton.hidden = confirm === null;
  dialog.querySelector('[data-action="cancel"]').textContent = cancel;
  dialog.returnValue = "";
  dialog.showModal();
  dialog.querySelector('[data-action="cancel"]').focus();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      if (opener?.isConnected) opener.focus();
      resolve(dialog.returnValue === "confirm");
    }, { once: true });
  });
}

const onOff = (enabled) => (enabled ? "on" : "off");

function changeList(before, after) {
  const found = changes(before, after);
  if (!found.length) return h("p", {}, "No difference in the definition.");
  return h("ul", { class: "diff" }, found.map(({ field, kind, before: was, after: now }) => h("li", {},
    h("code", {}, field), " ",
    was === undefined ? null : h("del", {}, summary(kind, was)),
    was !== undefined && now !== undefined ? " → " : null,
    now === undefined ? h("span", { class: "gone" }, "removed") : h("ins", {}, summary(kind, now)),
  )));
}

// ---- Flag writes with If-Match ----------------------------------------------------------------------

/** The current state of `key` after a 412: the list read again (straight from the database). */
async function newerState(key) {
  await refresh();
  return state.flags.get(key);
}

async function askToggle(key) {
  const seen = state.flags.get(key);
  if (!seen) return;
  const target = !seen.enabled;
  let current = seen;
  let note = null;
  for (;;) {
    const confirmed = await ask({
      title: `Turn ${onOff(target)} ${key}?`,
      body: [note, h("p", {}, target
        ? "Clients get its rules, rollout and default variant again within seconds."
        : `Every client gets the off variant “${current.offVariant}” within seconds.`)],
      confirm: `Turn ${onOff(target)}`,
    });
    if (!confirmed) return;
    try {
      const flag = await api("PATCH", flagPath(key), { body: { enabled: target }, ifMatch: current.version });
      upsert(flag);
      notice(`${key} is ${onOff(flag.enabled)} (version ${flag.version}).`);
      return;
    } catch (error) {
      if (error.status !== 412) return alertError(`${key} was not changed`, error);
    }
    current = await newerState(key);
    if (!current) return alertError(`${key} was not changed`, new ApiError(404, "FLAG_NOT_FOUND", "it was deleted"));
    if (current.enabled === target) {
      await ask({ title: `${key} is already ${onOff(target)}`, body: [conflictNote(key, current)], confirm: null, cancel: "Close" });
      return;
    }
    note = conflictNote(key, current);
  }
}

function conflictNote(key, flag) {
  return h("p", { class: "conflict", dataset: { conflict: String(flag.version) } },
    `${key} changed since you looked: it is now version ${flag.version}, ${onOff(flag.enabled)}, updated `,
    timeAgo(flag.updatedAt), ". Nothing was overwritten.");
}

async function askRevert(key, entry) {
  let current = state.flags.get(key);
  let note = null;
  for (;;) {
    if (!current) return alertError(`Version ${entry.version} was not restored`, new ApiError(404, "FLAG_NOT_FOUND", `${key} does not exist now`));
    const confirmed = await ask({
      title: `Restore version ${entry.version} of ${key}?`,
      body: [note, h("p", {}, `It becomes version ${current.version + 1}. Compared with version ${current.version}:`), changeList(current, entry.after)],
      confirm: "Restore",
    });
    if (!confirmed) return;
    try {
      const flag = await api("POST", flagPath(key, "/revert"), { body: { version: entry.version }, ifMatch: current.version });
      upsert(flag);
      notice(`${key}: version ${entry.version} restored as version ${flag.version}.`);
      return;
    } catch (error) {
      if (error.status !== 412) return alertError(`Version ${entry.version} was not restored`, error);
    }
    current = await newerState(key);
    note = current ? conflictNote(key, current) : null;
  }
}

// ---- The flag list ----------------------------------------------------------------------------------

const list = { element: null, rows: new Map(), items: null, count: null };

function switchButton(key) {
  return h("button", {
    type: "button", role: "switch", class: "switch", "aria-checked": "false", "aria-label": `${key} enabled`,
    dataset: { action: "toggle" }, onclick: () => askToggle(key),
  }, h("span", { class: "track", "aria-hidden": "true" }, h("span", { class: "thumb" })), h("span", { class: "state" }));
}

function showSwitch(button, enabled) {
  button.setAttribute("aria-checked", String(enabled));
  button.querySelector(".state").textContent = enabled ? "On" : "Off";
}

function buildList() {
  const search = h("input", {
    type: "search", id: "search", dataset: { action: "search" }, autocomplete: "off", spellcheck: "false",
    placeholder: "Key or description", oninput: (event) => { state.query = event.target.value; filterRows(); },
  });
  list.items = h("ul", { class: "flags", "aria-label": "Flags" });
  list.count = h("p", { class: "count", "aria-live": "polite" });
  list.element = h("section", { class: "page" },
    h("div", { class: "heading" }, h("h1", {}, "Flags"), h("div", { class: "actions tight" },
      h("button", { type: "button", dataset: { action: "refresh" }, onclick: () => refresh().then(() => notice("Flags read again."), (error) => alertError("Could not refresh", error)) }, "Refresh"),
      h("a", { class: "button primary", href: "#/new", dataset: { action: "new" } }, "New flag"))),
    h("div", { class: "field search" }, h("label", { for: "search" }, "Search"), search),
    list.count, list.items,
  );
}

function rowFor(key) {
  let row = list.rows.get(key);
  if (!row) {
    row = h("li", { class: "flag", dataset: { flagKey: key } },
      h("div", { class: "who" },
        h("a", { class: "key", href: `#/flags/${encodeURIComponent(key)}` }, key),
        h("p", { class: "description" }), h("p", { class: "meta" })),
      switchButton(key));
    list.rows.set(key, row);
  }
  return row;
}

function fillRow(row, flag) {
  row.querySelector(".description").textContent = flag.description;
  row.querySelector(".meta").replaceChildren(`version ${flag.version} · updated `, timeAgo(flag.updatedAt));
  showSwitch(row.querySelector('[data-action="toggle"]'), flag.enabled);
}

/** Update the rows in place (a focused switch keeps its focus), in the service's key order. */
function renderList() {
  if (!list.element) buildList();
  let previous = null;
  for (const flag of state.flags.values()) {
    const row = rowFor(flag.key);
    fillRow(row, flag);
    const expected = previous ? previous.nextElementSibling : list.items.firstElementChild;
    if (expected !== row) list.items.insertBefore(row, expected);
    previous = row;
  }
  for (const [key, row] of list.rows) {
    if (!state.flags.has(key)) {
      row.remove();
      list.rows.delete(key);
    }
  }
  filterRows();
}

function filterRows() {
  const query = state.query.trim().toLowerCase();
  let shown = 0;
  for (const [key, row] of list.rows) {
    const flag = state.flags.get(key);
    const matches = !query || key.toLowerCase().includes(query) || flag.description.toLowerCase().includes(query);
    row.hidden = !matches;
    shown += matches ? 1 : 0;
  }
  const total = state.flags.size;
  list.count.textContent = query ? `${shown} of ${total} flags match` : `${total} flag${total === 1 ? "" : "s"}`;
}

function listView() {
  state.view = null;
  renderList();
  main.replaceChildren(list.element);
  document.title = "Flags console";
}

// ---- A flag's page: header, cache stats, editor, history --------------------------------------------

function flagView(key) {
  const page = { key, version: null, editor: null, parts: {} };
  state.view = page;
  const parts = page.parts;
  parts.header = h("div", { class: "flag-header", dataset: { flagPage: key } });
  parts.banner = h("div", { class: "banner", hidden: true, dataset: { banner: "" } });
  parts.stats = h("div", { dataset: { stats: "" } }, h("p", {}, "Loading…"));
  parts.editor = h("div");
  parts.history = h("div", { dataset: { history: "" } }, h("p", {}, "Loading…"));
  const section = (id, title, body) => h("section", { "aria-labelledby": id }, h("h2", { id }, title), body);
  main.replaceChildren(h("section", { class: "page wide" },
    h("a", { href: "#/", class: "back" }, "← All flags"),
    parts.header, parts.banner,
    h("div", { class: "columns" },
      h("div", { class: "side" }, section("stats-title", "Cache", parts.stats), section("history-title", "History", parts.history)),
      h("div", { class: "main" }, section("edit-title", "Definition", parts.editor)),
    ),
  ));
  document.title = `${key} · Flags console`;
  showFlag(page);
}

/** Show the page's flag as the list has it now; a newer version reloads stats and history. */
function showFlag(page) {
  const flag = state.flags.get(page.key);
  renderHeader(page, flag);
  const version = flag ? flag.version : null;
  if (version === page.version && page.editor) return;
  page.version = version;
  if (!flag) page.parts.editor.replaceChildren(h("p", {}, "This flag does not exist (now). Its history is below."));
  else if (!page.editor || !page.editor.dirty) showEditor(page, flag);
  else if (changes(page.baseFlag, flag).every((change) => change.field === "enabled")) rebase(page, flag);
  else showBanner(page, `${page.key} changed elsewhere: version ${flag.version}. Your edits are kept.`, flag);
  loadHistory(page);
  loadStats(page);
}

function renderHeader(page, flag) {
  const header = page.parts.header;
  if (!flag) return header.replaceChildren(h("h1", { class: "key" }, page.key));
  let toggle = header.querySelector('[data-action="toggle"]');
  if (!toggle) {
    toggle = switchButton(page.key);
    header.replaceChildren(h("h1", { class: "key" }, page.key), h("p", { class: "description" }), toggle, h("p", { class: "meta" }));
  }
  header.querySelector(".description").textContent = flag.description || "No description";
  header.querySelector(".meta").replaceChildren(`version ${flag.version} · updated `, timeAgo(flag.updatedAt));
  showSwitch(toggle, flag.enabled);
}

/** Edits are sent as a PATCH without `enabled`: a newer version that only flipped the switch keeps them valid. */
function rebase(page, flag) {
  page.base = flag.version;
  page.baseFlag = flag;
}

function showEditor(page, flag) {
  rebase(page, flag);
  page.editor = new FlagEditor({ draft: draftOf(flag), onSave: (editor) => saveEdits(page, editor) });
  page.parts.editor.replaceChildren(page.editor.element);
  page.parts.banner.hidden = true;
}

function showBanner(page, text, flag, extra = null) {
  const banner = page.parts.banner;
  fill(banner, h("p", {}, text), h("div", { class: "actions" },
    h("button", { type: "button", dataset: { action: "load-newer" }, onclick: () => showEditor(page, state.flags.get(page.key) ?? flag) },
      `Load version ${flag.version} (drop my edits)`), extra));
  banner.hidden = false;
}

async function saveEdits(page, editor) {
  const { body, problems } = definitionOf(editor.draft);
  if (problems.length) return editor.showProblems(problems);
  editor.clearProblems();
  try {
    const flag = await api("PATCH", flagPath(page.key), { body, ifMatch: page.base });
    editor.dirty = false; // the page shows the saved version as its own
    upsert(flag);
    notice(`${page.key} saved as version ${flag.version}.`);
  } catch (error) {
    if (error.status === 400) return editor.showProblems(problemsOf(error, editor.draft));
    if (error.status !== 412) return alertError(`${page.key} was not saved`, error);
    const newer = await newerState(page.key);
    if (!newer) return alertError(`${page.key} was not saved`, new ApiError(404, "FLAG_NOT_FOUND", "it was deleted"));
    const again = h("button", { type: "button", dataset: { action: "save-over" }, onclick: () => { rebase(page, newer); saveEdits(page, editor); } },
      `Save my edits over version ${newer.version}`);
    showBanner(page, `Not saved: ${page.key} changed since you opened it (now version ${newer.version}). Nothing was overwritten.`, newer, again);
  }
}

async function loadStats(page) {
  let stats;
  try {
    stats = await api("GET", "admin/cache/stats");
  } catch (error) {
    return page.parts.stats.replaceChildren(h("p", { class: "error" }, describe(error)));
  }
  const mine = stats.flags.find((item) => item.key === page.key) || { hits: 0, misses: 0 };
  const total = mine.hits + mine.misses;
  const rate = total ? `${(Number(mine.hitRate ?? mine.hits / total) * 100).toFixed(1)} %` : "—";
  const stat = (label, name, value) => h("div", {}, h("dt", {}, label), h("dd", { dataset: { stat: name } }, String(value)));
  page.parts.stats.replaceChildren(
    h("dl", { class: "stats" }, stat("Hits", "hits", mine.hits), stat("Misses", "misses", mine.misses), stat("Hit rate", "hit-rate", rate)),
    h("p", { class: "hint" }, "Reads of this flag across all containers since ", timeAgo(stats.since), ". ",
      h("button", { type: "button", class: "quiet", dataset: { action: "refresh-stats" }, onclick: () => loadStats(page) }, "Refresh")),
  );
}

function historyEntry(page, entry, currentVersion) {
  const canRevert = entry.after !== null && entry.version !== currentVersion;
  const reason = entry.after === null ? "a deletion cannot be restored" : entry.version === currentVersion ? "this is the current version" : null;
  return h("li", { class: "entry", dataset: { historyEntry: String(entry.version) } },
    h("div", { class: "entry-head" },
      h("strong", {}, `Version ${entry.version}`), ` ${entry.action} by `, h("span", { class: "actor" }, entry.actor), " · ", timeAgo(entry.at)),
    entry.before === null ? h("p", { class: "hint" }, "Created:") : null,
    entry.after === null ? h("p", { class: "hint" }, "Deleted.") : changeList(entry.before, entry.after),
    h("button", { type: "button", dataset: { action: "revert" }, disabled: !canRevert, title: reason ?? undefined,
      onclick: () => askRevert(page.key, entry) }, canRevert ? `Restore version ${entry.version}` : `Restore (${reason})`),
  );
}

async function loadHistory(page, after = null) {
  let answer;
  try {
    answer = await api("GET", flagPath(page.key, `/history?limit=50${after ? `&after=${after}` : ""}`));
  } catch (error) {
    return page.parts.history.replaceChildren(h("p", { class: "error" }, describe(error)));
  }
  if (state.view !== page) return;
  const current = state.flags.get(page.key)?.version ?? null;
  const entries = answer.history.map((entry) => historyEntry(page, entry, current));
  const more = answer.next === null ? null
    : h("button", { type: "button", onclick: (event) => { event.target.remove(); loadHistory(page, answer.next); } }, "Older versions");
  if (after === null) fill(page.parts.history, h("ol", { class: "history" }, entries), more);
  else page.parts.history.append(h("ol", { class: "history" }, entries), ...(more ? [more] : []));
}

// ---- Create ------------------------------------------------------------------------------------------

function createView() {
  state.view = null;
  const editor = new FlagEditor({ draft: newDraft(), onSave: createFlag });
  main.replaceChildren(h("section", { class: "page" },
    h("a", { href: "#/", class: "back" }, "← All flags"), h("h1", {}, "New flag"), editor.element));
  document.title = "New flag · Flags console";
  editor.element.querySelector("input")?.focus();
}

async function createFlag(editor) {
  const { body, problems } = definitionOf(editor.draft);
  // POST replaces a flag that exists: a key already in use is refused here, so a create never overwrites.
  if (state.flags.has(body.key)) problems.push({ path: "key", message: "a flag with this key exists: open it from the list to edit it" });
  if (problems.length) return editor.showProblems(problems);
  editor.clearProblems();
  try {
    const flag = await api("POST", "admin/flags", { body });
    upsert(flag);
    notice(`${flag.key} created (version ${flag.version}).`);
    location.hash = `#/flags/${encodeURIComponent(flag.key)}`;
  } catch (error) {
    if (error.status === 400) return editor.showProblems(problemsOf(error, editor.draft));
    alertError("The flag was not created", error);
  }
}

// ---- State, routing, live updates, sign-in ----------------------------------------------------------

/** The flags in key order (code units, as the key rule allows only ASCII), then every view updated. */
function setFlags(flags) {
  const sorted = [...flags].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  state.flags = new Map(sorted.map((flag) => [flag.key, flag]));
  updateViews();
}

function upsert(flag) {
  setFlags([...state.flags.values()].filter((other) => other.key !== flag.key).concat(flag));
}

function updateViews() {
  if (list.element) renderList();
  if (state.view) showFlag(state.view);
}

let refreshing = null;
let refreshAgain = false;
/** Read the list again; calls while one read runs share a second read that starts after it (never a stale answer). */
function refresh() {
  if (refreshing) {
    refreshAgain = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      refreshAgain = false;
      setFlags(await listFlags());
    } while (refreshAgain);
  })().finally(() => (refreshing = null));
  return refreshing;
}

function route() {
  if (!state.started) return;
  let hash;
  try {
    hash = decodeURIComponent(location.hash.replace(/^#/, ""));
  } catch {
    hash = "/"; // a mistyped address: the list
  }
  if (hash.startsWith("/flags/")) flagView(hash.slice("/flags/".length));
  else if (hash === "/new") createView();
  else listView();
  main.focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

let stream = null;
let liveAttempt = 0; // each connectLive() or stop() starts a new one: an older attempt's late answer is dropped
let liveRetry = null;
let liveFailures = 0; // streams closed in a row without opening: the wait before the next URL doubles
function setLive(mode, text) {
  const live = $("[data-live]");
  live.dataset.live = mode;
  live.textContent = text;
}

/** The event stream the service advertises to the console (its SSE URL names the revision it was read at):
 *  read it first, then the list, then connect, so a change in between is announced at once on connect.
 *  A ws:// or wss:// URL is the push channel (deployed, or DEV_EVENTS=channel), followed by its adapter. */
async function connectLive() {
  const attempt = closeLive();
  let url = null;
  try {
    url = await eventStreamUrl();
  } catch {
    url = null;
  }
  await refresh();
  if (attempt !== liveAttempt) return;
  if (!url) {
    setLive("off", "Not live");
    return retryLive(NO_STREAM_RETRY_MS);
  }
  const source = /^wss?:/i.test(url) ? new ChannelEventSource(url) : new EventSource(url);
  stream = source;
  source.addEventListener("open", () => {
    liveFailures = 0;
    setLive("on", "Live");
  });
  source.addEventListener("message", () => refresh().catch((error) => alertError("Could not refresh", error)));
  source.addEventListener("error", () => {
    if (source !== stream) return;
    setLive("off", "Reconnecting…");
    // Closed for good (a refused or expired token, an HTTP error): a fresh URL, and the list read again.
    if (source.readyState === CLOSED) retryLive(backoff());
  });
}

/** Close the stream and any pending retry; the number of the attempt that follows. */
function closeLive() {
  clearTimeout(liveRetry);
  stream?.close();
  stream = null;
  return ++liveAttempt;
}

function retryLive(delay) {
  clearTimeout(liveRetry);
  liveRetry = setTimeout(() => {
    if (state.started) connectLive().catch(() => state.started && retryLive(backoff()));
  }, delay);
}

/** 5 s, then twice as long after each stream that closed (or list read that failed) in a row, up to a minute. */
function backoff() {
  return Math.min(STREAM_RETRY_MS * 2 ** liveFailures++, NO_STREAM_RETRY_MS);
}

async function start() {
  state.started = true;
  liveFailures = 0;
  $('[data-action="sign-out"]').hidden = false;
  main.replaceChildren(h("p", { class: "loading" }, "Loading…"));
  try {
    await connectLive();
  } catch (error) {
    alertError("Could not load the flags", error);
    retryLive(backoff()); // not live yet: try again (a sign-out stops it)
  }
  route();
}

// Deployed (the service put Cognito settings on <body>): the hosted UI instead of the admin token.
const config = signInConfig();
const session = config ? new CognitoSession(config) : null;

/** Signed out: with a message, because the service or Cognito ended the session (ask again, here). */
function signOut(message) {
  stop();
  if (!session) {
    token.clear();
    return showSignIn(message);
  }
  if (message) {
    session.forget();
    return showCognitoSignIn(message);
  }
  session.signOut(); // leaves for the hosted UI's logout, which brings the person back here
}

function stop() {
  state.started = false;
  closeLive();
  setLive("off", "Not live");
  state.flags = new Map();
  list.element = null;
  list.rows.clear();
  $('[data-action="sign-out"]').hidden = true;
  $("[data-user]").hidden = true;
}

function showCognitoSignIn(message = "") {
  const button = h("button", { type: "button", class: "primary", dataset: { action: "sign-in" } }, "Sign in");
  button.addEventListener("click", () => session.begin());
  main.replaceChildren(h("div", { class: "sign-in page" },
    h("h1", {}, "Sign in"),
    h("p", {}, "Sign in with your console account: Amazon Cognito's sign-in page opens, then brings you back here."),
    h("p", { class: "error", role: "alert" }, message),
    button,
  ));
  button.focus();
}

/** Deployed: back from the hosted UI, or still signed in in this tab; credentials first, then the flags. */
async function startSignedIn() {
  try {
    await session.complete();
    if (!session.signedIn) return showCognitoSignIn();
    signWith(session);
    await session.fresh();
  } catch (error) {
    session.forget();
    return showCognitoSignIn(error.message);
  }
  const { name, group } = session.person;
  const who = $("[data-user]");
  who.textContent = group ? `${name} (${group})` : name;
  who.hidden = false;
  start();
}

function showSignIn(message = "") {
  const input = h("input", {
    type: "password", id: "token", dataset: { action: "token" }, autocomplete: "off", spellcheck: "false", required: true,
  });
  const error = h("p", { class: "error", role: "alert" }, message);
  const form = h("form", { class: "sign-in page", novalidate: true },
    h("h1", {}, "Sign in"),
    h("p", {}, "Paste the admin token. ", h("code", {}, "make dev"), " prints it when it starts (",
      h("code", {}, "Authorization: Bearer …"), "). It is kept in this browser tab only."),
    h("div", { class: "field" }, h("label", { for: "token" }, "Admin token"), input),
    error,
    h("button", { type: "submit", class: "primary", dataset: { action: "sign-in" } }, "Sign in"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    signIn(input, error);
  });
  main.replaceChildren(form);
  input.focus();
}

async function signIn(input, error) {
  const value = input.value.trim().replace(/^(Authorization:\s*)?Bearer\s+/i, "");
  if (!value) {
    error.textContent = "Enter the admin token.";
    return input.focus();
  }
  token.set(value);
  try {
    await api("GET", "admin/flags?limit=1");
  } catch (failure) {
    token.clear();
    error.textContent = failure.status === 401 || failure.status === 403 ? "The service refused this token." : describe(failure);
    return input.focus();
  }
  start();
}

listen({
  onDegraded: setDegraded,
  onRefused: (message) => state.started && signOut(session ? message || "Your sign-in has ended: sign in again." : "The service refused the admin token: enter it again."),
});
window.addEventListener("hashchange", route);
setInterval(refreshTimes, 30_000);
$('[data-action="sign-out"]').addEventListener("click", () => signOut());
if (session) startSignedIn();
else if (token.get()) start();
else showSignIn();

// The admin API as the console calls it: the token (or, deployed, a SigV4 signature), JSON that keeps
// floats as floats, the degraded signal.

const TOKEN_KEY = "flags-console-token";
// The service's root is the folder above this module (/console/api.js -> /), behind a stage prefix too.
const API_ROOT = new URL("../", import.meta.url);
const FLOAT_MARK = "\u0000float:";

/** A JSON number written with a fraction or exponent: a float flag's `1.0` must go back as `1.0`, never `1`. */
export class JsonFloat {
  constructor(value) {
    this.value = value;
  }
  valueOf() {
    return this.value;
  }
  toString() {
    return formatFloat(this.value);
  }
  toJSON() {
    return FLOAT_MARK + formatFloat(this.value);
  }
}

export function formatFloat(value) {
  return Number.isInteger(value) && Math.abs(value) < 1e21 ? value.toFixed(1) : String(value);
}

/** JSON.parse that turns numbers written as floats into JsonFloat (the parser's source text tells). */
export function parseJson(text) {
  return JSON.parse(text, (_key, value, context) => {
    if (typeof value === "number" && context && /[.eE]/.test(context.source)) return new JsonFloat(value);
    return value;
  });
}

/** JSON.stringify that writes JsonFloat as a float literal. */
export function stringify(value, indent) {
  const text = JSON.stringify(value, null, indent);
  return text.replace(/"\\u0000float:([-+0-9.eE]+)"/g, "$1");
}

export class ApiError extends Error {
  constructor(status, code, details) {
    super(details || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.details = details || "";
  }
}

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

const listeners = { degraded: () => {}, refused: () => {} };

// Deployed: the Cognito session (signin.js) that signs every call instead of the token.
let signer = null;
export function signWith(session) {
  signer = session;
}
export const signed = () => signer !== null;

/** onDegraded(bool): an answer said whether reads are degraded; onRefused(): the token was refused. */
export function listen({ onDegraded, onRefused }) {
  listeners.degraded = onDegraded;
  listeners.refused = onRefused;
}

function noteDegraded(response) {
  // Only read answers (they carry X-Cache) say whether the cache serves; writes and history say nothing.
  if (response.headers.get("X-Flags-Degraded") === "true") listeners.degraded(true);
  else if (response.headers.has("X-Cache")) listeners.degraded(false);
}

/** One call: `path` is relative to the service root (`admin/flags`); JSON in and out; errors as ApiError. */
export async function api(method, path, { body, ifMatch, again = false } = {}) {
  const headers = { Accept: "application/json" };
  const bearer = token.get();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (ifMatch !== undefined) headers["If-Match"] = `"${ifMatch}"`;
  const url = new URL(path, API_ROOT);
  const payload = body === undefined ? undefined : stringify(body);
  if (signer) {
    delete headers.Authorization; // never a token deployed: /admin/* takes IAM only
    Object.assign(headers, await signatureFor(method, url, headers, payload));
  }
  let response;
  try {
    response = await fetch(url, { method, headers, cache: "no-store", body: payload });
  } catch {
    throw new ApiError(0, "NETWORK", "The service cannot be reached.");
  }
  noteDegraded(response);
  const text = await response.text();
  let data = null;
  try {
    data = text ? parseJson(text) : null;
  } catch {
    data = null;
  }
  if (response.ok) return data;
  if (signer && response.status === 403 && /^Signature (expired|not yet current)/.test(data?.errorDetails || "")) {
    // This computer's clock is off by more than AWS's five minutes: sign once more by the service's clock.
    if (!again && signer.learnClock(response.headers.get("Date"))) return api(method, path, { body, ifMatch, again: true });
    throw new ApiError(403, "FORBIDDEN", `This computer's clock is wrong: ${data.errorDetails}`);
  }
  // Deployed, a 403 is the group's role saying no (a viewer's write): said plainly, and still signed in.
  if (signer && response.status === 403) throw new ApiError(403, "FORBIDDEN", signer.refusal(method));
  if (response.status === 401 || response.status === 403) listeners.refused();
  throw new ApiError(response.status, data?.errorCode, data?.errorDetails);
}

async function signatureFor(method, url, headers, text) {
  try {
    return await signer.signedHeaders(method, url.href, headers, text);
  } catch (error) {
    if (error.name !== "SignInNeeded") throw new ApiError(0, "NETWORK", `Cognito cannot be reached: ${error.message}`);
    listeners.refused(error.message);
    throw new ApiError(401, "UNAUTHORIZED", error.message);
  }
}

export const flagPath = (key, rest = "") => `admin/flags/${encodeURIComponent(key)}${rest}`;

/** Every flag, following `next` page by page. */
export async function listFlags() {
  const flags = [];
  let after = null;
  do {
    const query = new URLSearchParams({ limit: "1000" });
    if (after !== null) query.set("after", after);
    const page = await api("GET", `admin/flags?${query}`);
    flags.push(...page.flags);
    after = page.next;
  } while (after !== null);
  return flags;
}

/** The event stream the service advertises (the `eventStreams` of a bulk evaluation, from an admin route: no
 *  readers' API key): the SSE stream with the revision it was read at, or the push channel's URL with a fresh token. */
export async function eventStreamUrl() {
  const answer = await api("GET", "admin/event-streams");
  const stream = (answer?.eventStreams || []).find((item) => item.type === "sse" && typeof item.url === "string");
  return stream ? stream.url : null;
}

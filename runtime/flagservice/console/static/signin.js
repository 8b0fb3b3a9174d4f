// Deployed sign-in: the Cognito hosted UI (authorization code + PKCE), then the identity pool's temporary
// credentials for the person's group role, which sign every admin call (sigv4.js). Plain fetch to the
// documented endpoints: /oauth2/authorize, /oauth2/token, /oauth2/revoke and /logout of the hosted UI;
// GetId and GetCredentialsForIdentity of the identity pool (JSON 1.1 protocol).
//
// Tokens live in sessionStorage (this tab only, like the local admin token); credentials in memory only.
// Credentials and the ID token are renewed five minutes before they expire, never after a refusal.

import { sign } from "./sigv4.js";

const SESSION_KEY = "flags-console-session"; // {idToken, refreshToken, identityId}
const PENDING_KEY = "flags-console-pending"; // {state, verifier} between the redirect and the return
const RENEW_MARGIN_MS = 5 * 60 * 1000;
const EDITORS = "flag-editors";

export class SignInNeeded extends Error {
  name = "SignInNeeded";
}

/** The deployed sign-in settings the service put on <body>, or null (local: the admin token). */
export function signInConfig() {
  try {
    const config = JSON.parse(document.body.dataset.signIn || "null");
    return config?.mode === "cognito" ? config : null;
  } catch {
    return null;
  }
}

const base64url = (bytes) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const randomText = (size) => base64url(crypto.getRandomValues(new Uint8Array(size)));

/** The claims of a JWT, for display and expiry only: the identity pool checks its signature, not us. */
export function claimsOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(part), (c) => c.charCodeAt(0))));
  } catch {
    return {};
  }
}

async function postJson(url, target, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": `AWSCognitoIdentityService.${target}` },
    body: JSON.stringify(body),
    cache: "no-store",
  });
  const data = await response.json().catch(() => ({}));
  if (response.ok) return data;
  const kind = String(data.__type || "").split("#").pop();
  if (kind === "NotAuthorizedException" || kind === "InvalidIdentityPoolConfigurationException") {
    throw new SignInNeeded(`${data.message || kind}. Are you in the group flag-viewers or ${EDITORS}? An administrator adds you.`);
  }
  throw new Error(`Cognito identity ${target}: ${data.message || kind || response.status}`);
}

export class CognitoSession {
  constructor(config) {
    this.config = config;
    this.credentials = null; // {accessKeyId, secretAccessKey, sessionToken, expires (ms)}
    this.renewing = null;
    this.clockOffsetMs = 0; // the service's clock minus this computer's: signatures and expiry go by it
    this.signedOut = 0; // how many times forget() ran: a renewal started before one must not store anything
  }

  now() {
    return Date.now() + this.clockOffsetMs;
  }

  /** After a "Signature expired" refusal: take the service's time from its Date header. True if it moved. */
  learnClock(dateHeader) {
    const server = Date.parse(dateHeader || "");
    if (Number.isNaN(server) || Math.abs(server - this.now()) < 60_000) return false;
    this.clockOffsetMs = server - Date.now();
    return true;
  }

  /** The console's own address, as registered with the app client (query and hash dropped). */
  get redirectUri() {
    return location.origin + location.pathname;
  }

  get stored() {
    try {
      return JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    } catch {
      return null;
    }
  }

  store(session) {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  }

  get signedIn() {
    return Boolean(this.stored?.idToken);
  }

  /** Who is signed in and in which group (from the ID token), for the page to say. */
  get person() {
    const claims = claimsOf(this.stored?.idToken || "");
    const groups = claims["cognito:groups"] || [];
    return { name: claims.email || claims["cognito:username"] || "", group: groups.includes(EDITORS) ? EDITORS : groups[0] || "" };
  }

  /** Off to the hosted UI; it comes back to this page with ?code=&state=. */
  async begin() {
    const verifier = randomText(48);
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
    const state = randomText(24);
    sessionStorage.setItem(PENDING_KEY, JSON.stringify({ state, verifier }));
    const query = new URLSearchParams({
      response_type: "code", client_id: this.config.clientId, redirect_uri: this.redirectUri, scope: "openid email",
      state, code_challenge: base64url(new Uint8Array(digest)), code_challenge_method: "S256",
    });
    location.assign(`${this.config.signInUrl}/oauth2/authorize?${query}`);
  }

  /** Back from the hosted UI: trade the code for tokens. False when this page load is not a return. */
  async complete() {
    const params = new URLSearchParams(location.search);
    if (!params.has("code") && !params.has("error")) return false;
    history.replaceState(null, "", this.redirectUri + location.hash); // the code is single-use: off the address bar
    const pending = JSON.parse(sessionStorage.getItem(PENDING_KEY) || "null");
    sessionStorage.removeItem(PENDING_KEY);
    // Only an answer to this tab's own request counts: a link anyone can craft (?error=...&error_description=
    // "call this number") must neither put its words on this page nor end the session this tab has.
    if (!pending || params.get("state") !== pending.state) {
      if (this.signedIn) return false;
      throw new SignInNeeded("Sign-in failed: the answer was not for this tab. Sign in again.");
    }
    if (params.has("error")) throw new SignInNeeded(`Sign-in failed: ${params.get("error_description") || params.get("error")}`);
    const tokens = await this.token({
      grant_type: "authorization_code", code: params.get("code"), redirect_uri: this.redirectUri, code_verifier: pending.verifier,
    });
    this.store({ idToken: tokens.id_token, refreshToken: tokens.refresh_token, identityId: null });
    return true;
  }

  async token(fields) {
    const response = await fetch(`${this.config.signInUrl}/oauth2/token`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ ...fields, client_id: this.config.clientId }),
      cache: "no-store",
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok || !data.id_token) throw new SignInNeeded(`Sign-in ended (${data.error || response.status}): sign in again.`);
    return data;
  }

  expiresSoon(expiresMs) {
    return !expiresMs || expiresMs - this.now() < RENEW_MARGIN_MS;
  }

  /** Credentials good for at least five more minutes; concurrent callers share one renewal. */
  async fresh() {
    if (this.credentials && !this.expiresSoon(this.credentials.expires)) return this.credentials;
    this.renewing ??= this.renew().finally(() => (this.renewing = null));
    return this.renewing;
  }

  async renew() {
    const session = this.stored;
    if (!session?.idToken) throw new SignInNeeded("Sign in to continue.");
    const signedOut = this.signedOut;
    // Sign-out can happen while a renewal waits on Cognito: what it brings back then must not sign the tab in again.
    const stillSignedIn = () => {
      if (this.signedOut !== signedOut) throw new SignInNeeded("Signed out.");
    };
    if (this.expiresSoon((claimsOf(session.idToken).exp || 0) * 1000)) {
      const tokens = await this.token({ grant_type: "refresh_token", refresh_token: session.refreshToken });
      stillSignedIn();
      session.idToken = tokens.id_token;
      this.store(session);
    }
    const { region, userPoolId, identityPoolId, identityUrl } = this.config;
    const logins = { [`cognito-idp.${region}.amazonaws.com/${userPoolId}`]: session.idToken };
    if (!session.identityId) {
      session.identityId = (await postJson(identityUrl, "GetId", { IdentityPoolId: identityPoolId, Logins: logins })).IdentityId;
      stillSignedIn();
      this.store(session);
    }
    const { Credentials: got } = await postJson(identityUrl, "GetCredentialsForIdentity", { IdentityId: session.identityId, Logins: logins });
    stillSignedIn();
    this.credentials = { accessKeyId: got.AccessKeyId, secretAccessKey: got.SecretKey, sessionToken: got.SessionToken, expires: got.Expiration * 1000 };
    return this.credentials;
  }

  /** SigV4 headers for one admin call (execute-api in the identity pool's region). */
  async signedHeaders(method, url, headers, body) {
    const credentials = await this.fresh();
    const { region } = this.config;
    return sign({ method, url, headers, body, credentials, region, service: "execute-api", now: new Date(this.now()) });
  }

  /** What a refused (403) admin call means for this person. */
  refusal(method) {
    const { group } = this.person;
    if (method !== "GET" && group !== EDITORS) {
      return `Not allowed: as a member of ${group || "no group"} you can read flags but not change them. An administrator can add you to ${EDITORS}.`;
    }
    return `Not allowed: your group (${group || "none"}) may not do this.`;
  }

  forget() {
    this.signedOut += 1;
    this.credentials = null;
    sessionStorage.removeItem(SESSION_KEY);
  }

  /** Revoke the refresh token, forget everything, and end the hosted UI's session too. */
  async signOut() {
    const refreshToken = this.stored?.refreshToken;
    this.forget();
    if (refreshToken) {
      await fetch(`${this.config.signInUrl}/oauth2/revoke`, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ token: refreshToken, client_id: this.config.clientId }),
      }).catch(() => {});
    }
    const query = new URLSearchParams({ client_id: this.config.clientId, logout_uri: this.redirectUri });
    location.assign(`${this.config.signInUrl}/logout?${query}`);
  }
}

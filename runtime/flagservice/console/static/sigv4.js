// AWS Signature Version 4 for the console's admin calls, with WebCrypto only (no library).
//
// The deployed console signs with the temporary credentials of the signed-in person's group role, so that
// API Gateway's IAM authorizer lets it through /admin/*. Canonical request as AWS documents it, and as
// botocore builds it: each path segment encoded twice (the URL holds it encoded once), query pairs encoded
// and sorted, headers lower-cased and trimmed, the body's SHA-256. tests/console/test_sign_in.py compares
// signatures with botocore's and with AWS's published test-suite vectors.

const encoder = new TextEncoder();

const hex = (buffer) => Array.from(new Uint8Array(buffer), (byte) => byte.toString(16).padStart(2, "0")).join("");

export async function sha256Hex(text) {
  return hex(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

async function hmac(key, text) {
  const raw = typeof key === "string" ? encoder.encode(key) : key;
  const imported = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return crypto.subtle.sign("HMAC", imported, encoder.encode(text));
}

/** RFC 3986 percent-encoding as SigV4 wants it: everything except A-Z a-z 0-9 - _ . ~ */
export function uriEncode(text) {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function canonicalQuery(search) {
  const decode = (text) => decodeURIComponent(text.replace(/\+/g, " "));
  const pairs = search.replace(/^\?/, "").split("&").filter(Boolean).map((pair) => {
    const at = pair.indexOf("=");
    const [key, value] = at < 0 ? [pair, ""] : [pair.slice(0, at), pair.slice(at + 1)];
    return [uriEncode(decode(key)), uriEncode(decode(value))];
  });
  pairs.sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0));
  return pairs.map(([key, value]) => `${key}=${value}`).join("&");
}

/** `20150830T123600Z` */
export function amzDate(when) {
  return when.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

/**
 * The headers to add to a request so that AWS accepts it: Authorization, X-Amz-Date and, with temporary
 * credentials, X-Amz-Security-Token. Every header in `headers` is signed, and the URL's host.
 * credentials: {accessKeyId, secretAccessKey, sessionToken?}; body: a string or undefined.
 */
export async function sign({ method, url, headers = {}, body, credentials, region, service, now = new Date() }) {
  const target = new URL(url);
  const date = amzDate(now);
  const added = { "X-Amz-Date": date };
  if (credentials.sessionToken) added["X-Amz-Security-Token"] = credentials.sessionToken;
  const signed = new Map([["host", target.host]]);
  for (const [name, value] of Object.entries({ ...headers, ...added })) {
    signed.set(name.toLowerCase(), String(value).trim().replace(/\s+/g, " "));
  }
  const names = [...signed.keys()].sort();
  const canonical = [
    method.toUpperCase(),
    target.pathname.split("/").map(uriEncode).join("/") || "/",
    canonicalQuery(target.search),
    names.map((name) => `${name}:${signed.get(name)}\n`).join(""),
    names.join(";"),
    await sha256Hex(body ?? ""),
  ].join("\n");
  const scope = `${date.slice(0, 8)}/${region}/${service}/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", date, scope, await sha256Hex(canonical)].join("\n");
  let key = `AWS4${credentials.secretAccessKey}`;
  for (const part of [date.slice(0, 8), region, service, "aws4_request"]) key = await hmac(key, part);
  const signature = hex(await hmac(key, toSign));
  added.Authorization =
    `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${names.join(";")}, Signature=${signature}`;
  return added;
}

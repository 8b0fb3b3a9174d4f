// OpenFeature's server SDK with the OFREP provider (@openfeature/ofrep-provider), unchanged, as an application
// would use them. Run by tests/ofrep/test_js_provider.py:
//
//   node evaluate.mjs < request.json > results.json
//
// request.json: {"baseUrl": "http://127.0.0.1:3000", "headers": {...}, "evaluations": [
//   {"id": "...", "kind": "boolean" | "string" | "number" | "object", "key": "...", "default": ..., "context": {...}}]}
// results.json: one object per evaluation, in order: id, value, variant, reason, errorCode, errorMessage, flagMetadata.
import { readFileSync } from 'node:fs';
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';

const request = JSON.parse(readFileSync(0, 'utf8'));

// The same setup docs/openfeature.md shows: the base URL, and headers only where the service needs them.
await OpenFeature.setProviderAndWait(new OFREPProvider({ baseUrl: request.baseUrl, headers: request.headers ?? {} }));
const client = OpenFeature.getClient();

const evaluators = {
  boolean: (key, fallback, context) => client.getBooleanDetails(key, fallback, context),
  string: (key, fallback, context) => client.getStringDetails(key, fallback, context),
  number: (key, fallback, context) => client.getNumberDetails(key, fallback, context),
  object: (key, fallback, context) => client.getObjectDetails(key, fallback, context),
};

const results = [];
for (const { id, kind, key, default: fallback, context } of request.evaluations) {
  const details = await evaluators[kind](key, fallback, context ?? {});
  results.push({
    id,
    value: details.value,
    variant: details.variant ?? null,
    reason: details.reason ?? null,
    errorCode: details.errorCode ?? null,
    errorMessage: details.errorMessage ?? null,
    flagMetadata: details.flagMetadata,
  });
}
await OpenFeature.close();
process.stdout.write(JSON.stringify(results));

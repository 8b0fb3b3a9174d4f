// The page of the browser propagation test (tests/browser) and bench (bench/consistency/browser_propagation.py).
// OpenFeature's web SDK with the OFREP web provider, polling off, against the service named in the query
// string (?service=<base URL>&flag=<key>). Every change of the flag's value is recorded with Date.now()
// in window.probe.changes; provider events go to window.probe.events (for diagnosis only).
import { OpenFeature, ProviderEvents } from '@openfeature/web-sdk';
import { OFREPWebProvider } from '@openfeature/ofrep-web-provider';
import { installFlagChannel } from '../../../runtime/flagservice/console/static/flag-channel.js';

const query = new URLSearchParams(window.location.search);
const flag = query.get('flag');
const probe = { ready: false, changes: [], events: [], failure: null, opened: 0, fetches: 0, messages: [] };
window.probe = probe;
document.getElementById('flag').textContent = flag;

const client = OpenFeature.getClient();

// The flag's value as the page would use it, or `error:<code>` when the provider had none to give (a missing flag
// is never mistaken for false).
function currentValue() {
  const details = client.getBooleanDetails(flag, false);
  return details.errorCode ? `error:${details.errorCode}` : details.value;
}

// Called on every provider event and on a short timer: records the value whenever it differs from the last one.
function observe(source) {
  if (!probe.ready) {
    return;
  }
  const value = currentValue();
  const last = probe.changes.length ? probe.changes[probe.changes.length - 1].value : undefined;
  if (value !== last) {
    probe.changes.push({ at: Date.now(), value, source });
    document.getElementById('value').textContent = String(value);
  }
}

for (const type of [ProviderEvents.Ready, ProviderEvents.ConfigurationChanged, ProviderEvents.Stale,
  ProviderEvents.Error]) {
  client.addHandler(type, (details) => {
    probe.events.push({ at: Date.now(), type, message: details?.message ?? null });
    observe(type);
  });
}
installFlagChannel(); // the deployed push channel's adapter: SSE URLs still go to the browser's EventSource
// For the tests' preconditions only: how many streams opened, how many fetches finished.
const Installed = window.EventSource;
window.EventSource = function CountingEventSource(url, init) {
  const source = new Installed(url, init);
  source.addEventListener('open', () => { probe.opened += 1; });
  source.addEventListener('message', (event) => { probe.messages.push({ at: Date.now(), data: event.data }); });
  return source;
};
const nativeFetch = window.fetch.bind(window);
window.fetch = (...args) => nativeFetch(...args).then((answer) => {
  probe.fetches += 1;
  probe.messages.push({ at: Date.now(), fetched: answer.status });
  return answer;
});
const provider = new OFREPWebProvider({ baseUrl: query.get('service'), pollInterval: 0 });
OpenFeature.setProviderAndWait(provider)
  .then(() => {
    probe.ready = true;
    observe('ready');
    // The timer catches a value change that came without an event (it would show as source "timer").
    setInterval(() => observe('timer'), 25);
  })
  .catch((error) => { probe.failure = String(error); });

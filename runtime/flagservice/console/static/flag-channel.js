// The flag service's browser adapter for its deployed push channel (AppSync Events over WebSocket; issue 17).
// @openfeature/ofrep-web-provider 0.4.x follows `eventStreams` entries of type "sse" with `new EventSource(url)`.
// installFlagChannel() replaces the global EventSource with a switch: a ws:// or wss:// URL (the channel, as
// the service advertises it) gets a ChannelEventSource, anything else the browser's own EventSource. Call it
// once, before the provider starts. No dependencies; ship this file as is (docs/openfeature.md).
//
// Catch-up rule: AppSync keeps no history, so on every (re)subscription the adapter hands the provider one
// `refetchEvaluation` without an etag: a conditional re-fetch (a 304 when nothing changed), so a change made
// while the client was not subscribed is never missed. Network drops reconnect with backoff; a refused or
// expired credential closes the source (readyState 2) and the provider fetches a fresh URL itself.
// Order rule: every container publishes, an owed message goes again late: an older change may follow a newer one.
// The provider re-fetches with the last etag of a 50 ms burst, and a worker still at that older revision answers
// 304, hiding the newer change: a message no newer than one passed on in this subscription is dropped.
const PROTOCOL = 'aws-appsync-event-ws';
const RETRY_MS = [250, 500, 1000, 2000];
const GIVE_UP_AFTER = 30; // consecutive failed attempts before the provider is told to fetch a fresh URL
const CATCH_UP = '{"type":"refetchEvaluation"}';

function revisionOf(event) { // the revision a change message names (its etag), or NaN
  try { return Number(JSON.parse(event).etag); } catch { return NaN; }
}

function base64Url(text) {
  const bytes = new TextEncoder().encode(text);
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

// The token is `v1.<expiry unix seconds>.<mac>`: an expired one is not retried.
function expired(token) {
  const expiry = Number((token || '').split('.')[1]);
  return !Number.isFinite(expiry) || Date.now() / 1000 >= expiry;
}

export class ChannelEventSource extends EventTarget {
  constructor(url) {
    super();
    const parsed = new URL(url);
    this.url = url;
    this.withCredentials = false;
    this.readyState = 0; // CONNECTING, OPEN = 1, CLOSED = 2, as EventSource
    this._channel = parsed.searchParams.get('channel');
    this._auth = { host: parsed.searchParams.get('host'), Authorization: parsed.searchParams.get('token') };
    parsed.search = '';
    this._endpoint = parsed.href;
    this._failures = 0;
    this._connect();
  }

  close() {
    this.readyState = 2;
    clearTimeout(this._retry);
    clearTimeout(this._watchdog);
    if (this._socket) this._socket.close();
  }

  _connect() {
    const socket = new WebSocket(this._endpoint, [PROTOCOL, `header-${base64Url(JSON.stringify(this._auth))}`]);
    this._socket = socket;
    this._subscribed = false;
    socket.onopen = () => socket.send(JSON.stringify({ type: 'connection_init' }));
    socket.onmessage = (message) => this._receive(socket, message.data);
    socket.onclose = () => this._dropped(socket);
  }

  _receive(socket, raw) {
    let message;
    try { message = JSON.parse(raw); } catch { return; }
    this._alive(socket, message.connectionTimeoutMs);
    if (message.type === 'connection_ack') {
      const id = globalThis.crypto?.randomUUID ? crypto.randomUUID() : `s${Date.now()}${Math.random()}`;
      socket.send(JSON.stringify({ type: 'subscribe', id, channel: this._channel, authorization: this._auth }));
    } else if (message.type === 'subscribe_success') {
      [this._subscribed, this._newest, this._failures] = [true, -Infinity, 0];
      this.readyState = 1;
      this.dispatchEvent(new Event('open'));
      this.dispatchEvent(new MessageEvent('message', { data: CATCH_UP }));
    } else if (message.type === 'data' && typeof message.event === 'string') {
      const revision = revisionOf(message.event);
      if (revision <= this._newest) return; // the order rule (a message without a revision is NaN: passed on)
      if (Number.isInteger(revision)) this._newest = revision;
      this.dispatchEvent(new MessageEvent('message', { data: message.event }));
    } else if (/error$/.test(message.type)) {
      this._refused = true; // subscribe_error, connection_error, error: the credential or the request was refused
      socket.close();
    }
  }

  // AppSync promises a `ka` within connectionTimeoutMs: silence that long means a dead connection.
  _alive(socket, timeoutMs) {
    if (timeoutMs) this._timeoutMs = timeoutMs;
    clearTimeout(this._watchdog);
    this._watchdog = setTimeout(() => socket.close(), this._timeoutMs || 300000);
  }

  _dropped(socket) {
    if (socket !== this._socket || this.readyState === 2) return;
    clearTimeout(this._watchdog);
    this._failures = this._subscribed ? 0 : this._failures + 1;
    if (this._refused || expired(this._auth.Authorization) || this._failures >= GIVE_UP_AFTER) {
      this.readyState = 2;
      this.dispatchEvent(new Event('error'));
      return;
    }
    this.readyState = 0;
    this.dispatchEvent(new Event('error'));
    const delay = RETRY_MS[Math.min(this._failures, RETRY_MS.length - 1)];
    this._retry = setTimeout(() => this._connect(), delay);
  }
}

export function installFlagChannel(target = globalThis) {
  const Native = target.EventSource;
  function EventSourceSwitch(url, init) {
    return /^wss?:/i.test(String(url)) ? new ChannelEventSource(url) : new Native(url, init);
  }
  EventSourceSwitch.CONNECTING = 0;
  EventSourceSwitch.OPEN = 1;
  EventSourceSwitch.CLOSED = 2;
  target.EventSource = EventSourceSwitch;
}

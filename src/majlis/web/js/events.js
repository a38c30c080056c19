// The events socket of a space, for people who act in it (on stage, asking, invited).
//
// Reconnects by itself with full-jitter exponential backoff, each reconnect taken from the
// page's retry budget (retry.js: when it holds none, it waits until it does); each
// (re)connect starts with a
// fresh {type: 'hello'} snapshot, which the page treats as "resynchronise everything".
// Close codes that mean "you may not be here" stop the reconnecting:
//   4401 not logged in, 4403 not allowed / removed, 4404 no such space, 4409 space ended.

import { t } from './i18n.js';
import { budget, retryDelay } from './retry.js';

const FINAL = new Map([
  [4401, t('listen.events.log_in')],
  [4403, t('listen.events.forbidden')],
  [4404, t('listen.events.no_space')],
  [4409, t('listen.events.ended')],
]);
const PING_MS = 25000;
const STABLE_MS = 10000;

export class EventStream extends EventTarget {
  /** on('hello' | 'event' | <event type> | 'state', fn) — see emit() calls below. */
  constructor(spaceId, { token } = {}) {
    super();
    this.spaceId = spaceId;
    this.token = token;
    this.state = 'idle';
    this.attempt = 0;
    this.socket = null;
    this.timer = null;
    this.pinger = null;
    this.stableTimer = null;
    this.stopped = false;
  }

  on(type, fn) {
    this.addEventListener(type, (event) => fn(event.detail));
    return this;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  setState(state, detail = {}) {
    this.state = state;
    this.emit('state', { state, ...detail });
  }

  url() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const query = this.token ? `?token=${encodeURIComponent(this.token)}` : '';
    return `${scheme}//${location.host}/api/v1/spaces/${encodeURIComponent(this.spaceId)}/events${query}`;
  }

  start() {
    this.stopped = false;
    if (!this.socket) this.connect();
    return this;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.stableTimer);
    clearInterval(this.pinger);
    if (this.socket) {
      this.socket.onclose = null;
      this.socket.close(1000, 'bye');
      this.socket = null;
    }
    this.setState('closed');
  }

  connect() {
    clearTimeout(this.timer);
    this.setState(this.attempt ? 'reconnecting' : 'connecting');
    let socket;
    try {
      socket = new WebSocket(this.url());
    } catch (error) {
      this.retry(1006, String(error));
      return;
    }
    socket.binaryType = 'arraybuffer';
    this.socket = socket;
    socket.onopen = () => {
      clearInterval(this.pinger);
      this.pinger = setInterval(() => {
        if (socket.readyState === WebSocket.OPEN) socket.send('ping');
      }, PING_MS);
      // Only forget past failures once the connection has lasted a while.
      this.stableTimer = setTimeout(() => {
        this.attempt = 0;
      }, STABLE_MS);
    };
    socket.onmessage = (message) => this.receive(message.data);
    socket.onclose = (event) => {
      clearInterval(this.pinger);
      clearTimeout(this.stableTimer);
      this.socket = null;
      if (this.stopped) return;
      this.retry(event.code, event.reason);
    };
  }

  receive(raw) {
    const text = typeof raw === 'string' ? raw : new TextDecoder().decode(raw);
    if (text === 'pong') return;
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (message.type === 'hello') {
      this.setState('connected', { role: message.role });
      this.emit('hello', message);
      return;
    }
    this.emit('event', message);
    this.emit(message.type, message);
  }

  retry(code, reason) {
    if (code === 1000 || FINAL.has(code)) {
      this.stopped = true;
      this.setState('closed', { code, reason: FINAL.get(code) ?? reason ?? '' });
      return;
    }
    const delay = retryDelay(this.attempt, { base: 500, cap: 30000 });
    const wait = code === 4429 ? Math.max(5000, delay) : delay;
    this.attempt += 1;
    this.setState('reconnecting', { code, inMs: wait });
    this.timer = setTimeout(() => {
      if (this.stopped) return;
      if (budget.tryRetry()) this.connect();
      else this.retry(code, reason); // no retry in the budget now: wait again, longer
    }, wait);
  }
}

// Polls a space's state document (speakers, who is talking, listener count, reactions)
// about once a second — from the edge once /join has named it (`url`), which caches it for
// a second, so this costs the server nothing per listener. Slower while the tab is hidden.
// While it fails it waits the server's Retry-After or a full-jitter backoff, never less than
// its normal interval: a failing poll is never sooner than the schedule (no retries to budget).
// Events: state (the document), connection ({state: live|reconnecting|offline, inMs}).

import { spaces } from './api.js';
import { retryDelay } from './retry.js';

export class StatePoller extends EventTarget {
  constructor(spaceId, { interval = 1000, hiddenInterval = 5000 } = {}) {
    super();
    this.spaceId = spaceId;
    this.url = undefined; // the state document's URL on the edge, once /join names one
    this.interval = interval;
    this.hiddenInterval = hiddenInterval;
    this.failures = 0;
    this.timer = null;
    this.running = false;
    this.last = null;
    this.onVisible = () => {
      if (!document.hidden && this.running) this.poll();
    };
  }

  on(type, fn) {
    this.addEventListener(type, (event) => fn(event.detail));
    return this;
  }

  start() {
    if (this.running) return this;
    this.running = true;
    document.addEventListener('visibilitychange', this.onVisible);
    this.poll();
    return this;
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
    document.removeEventListener('visibilitychange', this.onVisible);
  }

  /** Poll now (after an action whose effect should show at once). */
  refresh() {
    if (this.running) this.poll();
  }

  async poll() {
    clearTimeout(this.timer);
    let wait;
    try {
      const state = await spaces.state(this.spaceId, { retries: 0, url: this.url });
      if (this.failures) this.connection('live');
      this.failures = 0;
      this.last = state;
      this.dispatchEvent(new CustomEvent('state', { detail: state }));
      wait = document.hidden ? this.hiddenInterval : this.interval;
    } catch (error) {
      this.failures += 1;
      const delay = retryDelay(this.failures - 1, { retryAfterMs: error.retryAfterMs, base: 2000, cap: 20000 });
      wait = Math.max(this.interval, delay);
      this.connection(navigator.onLine === false ? 'offline' : 'reconnecting', wait, error);
    }
    if (this.running) this.timer = setTimeout(() => this.poll(), wait);
  }

  connection(state, inMs = 0, error = null) {
    this.dispatchEvent(new CustomEvent('connection', { detail: { state, inMs, error } }));
  }
}

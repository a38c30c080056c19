// How the web app retries: the server's Retry-After first, else full-jitter exponential
// backoff with a cap, and always inside one retry budget per page.
//
// The budget is Finagle's and gRPC's defence against retry storms: every request deposits
// `ratio` of a retry (10 %), every retry withdraws one, deposits are forgotten after
// `ttlMs`, and `reserve` retries per window are allowed on top (so a page that has made few
// requests may still retry once). In any window a page retries at most
// reserve + ratio × requests: when the server is down, a crowd of pages keeps sending what
// it sends anyway (its polls, heartbeats) plus about a tenth. The same rules in Python:
// majlis/client/retry.py.

export class RetryBudget {
  constructor({ ratio = 0.1, reserve = 1, ttlMs = 60000, now = () => performance.now() } = {}) {
    if (!(ratio >= 0 && reserve >= 0 && ttlMs > 0)) throw new RangeError('ratio, reserve >= 0 and ttlMs > 0');
    this.ratio = ratio;
    this.reserve = reserve;
    this.ttlMs = ttlMs;
    this.now = now;
    this.requestTimes = [];
    this.retryTimes = [];
    this.requests = 0; // totals, for tests and debugging
    this.retries = 0;
    this.denied = 0;
  }

  forget(now) {
    const horizon = now - this.ttlMs;
    for (const times of [this.requestTimes, this.retryTimes]) {
      let drop = 0;
      while (drop < times.length && times[drop] <= horizon) drop += 1;
      if (drop) times.splice(0, drop);
    }
  }

  /** Retries the budget holds now (may be fractional). */
  balance() {
    this.forget(this.now());
    return this.reserve + this.ratio * this.requestTimes.length - this.retryTimes.length;
  }

  /** Count a first attempt (not a retry). */
  request() {
    this.requestTimes.push(this.now());
    this.requests += 1;
  }

  /** Take one retry if the budget holds one; false: do not retry now. */
  tryRetry() {
    if (this.balance() < 1) {
      this.denied += 1;
      return false;
    }
    this.retryTimes.push(this.now());
    this.retries += 1;
    return true;
  }

  /** Milliseconds until a retry would be allowed if no more requests were made (0: now). */
  waitMs() {
    const now = this.now();
    let short = 1 - this.balance();
    if (short <= 0) return 0;
    const events = [
      ...this.retryTimes.map((t) => [t, 1]),
      ...this.requestTimes.map((t) => [t, -this.ratio]),
    ].sort((a, b) => a[0] - b[0]);
    for (const [moment, change] of events) {
      short -= change;
      if (short <= 1e-9) return Math.max(0, moment + this.ttlMs - now);
    }
    return this.ttlMs;
  }
}

/** The page's one budget, shared by every retry path (API calls, players, sockets). */
export const budget = new RetryBudget();

/** Full jitter: a random wait in [0, min(cap, base × 2^attempt)] ms. */
export function fullJitter(attempt, { base = 500, cap = 30000, random = Math.random } = {}) {
  return Math.round(random() * Math.min(cap, base * 2 ** Math.min(attempt, 60)));
}

// A Retry-After longer than this is taken as this (a broken proxy must not park a page).
export const MAX_RETRY_AFTER_MS = 300000;

/** The server's Retry-After (ms) when it sent one, else full jitter. */
export function retryDelay(attempt, { retryAfterMs = null, base = 500, cap = 30000, random = Math.random } = {}) {
  if (Number.isFinite(retryAfterMs) && retryAfterMs >= 0) return Math.min(retryAfterMs, MAX_RETRY_AFTER_MS);
  return fullJitter(attempt, { base, cap, random });
}

export const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason ?? new DOMException('aborted', 'AbortError'));
      return;
    }
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason ?? new DOMException('aborted', 'AbortError'));
      },
      { once: true },
    );
  });

/**
 * Wait before retry `attempt` of a path that must go on (a player, a socket): the delay,
 * then until the budget gives a retry (each further wait at least `cap`). Returns the ms
 * waited in all.
 */
export async function retryPause(attempt, { retryAfterMs = null, base = 500, cap = 30000, signal, of = budget } = {}) {
  let wait = retryDelay(attempt, { retryAfterMs, base, cap });
  let waited = 0;
  for (;;) {
    await sleep(wait, signal);
    waited += wait;
    if (of.tryRetry()) return waited;
    wait = Math.max(cap, of.waitMs());
  }
}

// hls.js's defaults, kept (counts and delays per kind of load); only the question "retry
// now?" is put to the budget, so its own retries are counted with everyone else's.
const HLS_DEFAULTS = {
  manifestLoadPolicy: { ttfb: Infinity, load: 20000, timeouts: 2, errors: 1 },
  playlistLoadPolicy: { ttfb: 10000, load: 20000, timeouts: 2, errors: 2 },
  fragLoadPolicy: { ttfb: 10000, load: 120000, timeouts: 4, errors: 6 },
};

/**
 * hls.js load policies whose retries come out of `of` (the page's budget): a retry hls.js
 * would make happens only if the budget holds one; otherwise the error turns fatal and the
 * player's own recovery (jittered, also on the budget) takes over. Every load hls.js
 * starts should be counted with `of.request()` (the player does it in xhrSetup).
 */
export function hlsLoadPolicies(of = budget) {
  const shouldRetry = (_config, _count, _isTimeout, _response, retry) => retry && of.tryRetry();
  const policies = {};
  for (const [name, d] of Object.entries(HLS_DEFAULTS)) {
    policies[name] = {
      default: {
        maxTimeToFirstByteMs: d.ttfb,
        maxLoadTimeMs: d.load,
        timeoutRetry: { maxNumRetry: d.timeouts, retryDelayMs: 0, maxRetryDelayMs: 0, shouldRetry },
        errorRetry: { maxNumRetry: d.errors, retryDelayMs: 1000, maxRetryDelayMs: 8000, shouldRetry },
      },
    };
  }
  return policies;
}

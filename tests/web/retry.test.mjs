// Unit tests of src/majlis/web/js/retry.js (the web app's retry budget and backoff), run
// with `node --test` by tests/web/test_retry_js.py. A fake clock drives the budget.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { RetryBudget, fullJitter, hlsLoadPolicies, retryDelay, retryPause } from '../../src/majlis/web/js/retry.js';

function clock() {
  const c = { t: 1000 };
  c.now = () => c.t;
  return c;
}

test('a fresh budget allows its reserve and no more', () => {
  const c = clock();
  const budget = new RetryBudget({ ratio: 0.1, reserve: 1, ttlMs: 60000, now: c.now });
  assert.equal(budget.tryRetry(), true);
  assert.equal(budget.tryRetry(), false);
  assert.equal(budget.denied, 1);
});

test('retries are a tenth of requests plus the reserve, forgotten after ttl', () => {
  const c = clock();
  const budget = new RetryBudget({ ratio: 0.1, reserve: 1, ttlMs: 60000, now: c.now });
  for (let i = 0; i < 100; i += 1) budget.request();
  let allowed = 0;
  for (let i = 0; i < 50; i += 1) allowed += budget.tryRetry() ? 1 : 0;
  assert.equal(allowed, 11);
  assert.equal(budget.waitMs(), 60000);
  c.t += 60001;
  assert.equal(budget.balance(), 1);
  assert.equal(budget.tryRetry(), true);
});

test('a crowd of pages against a dead server sends at most a tenth more', () => {
  const c = clock();
  const pages = Array.from({ length: 200 }, () => new RetryBudget({ now: c.now }));
  for (let s = 0; s < 120; s += 1) {
    for (const page of pages) page.request();
    c.t += 1000;
  }
  let sent = 0;
  for (let s = 0; s < 60; s += 1) {
    for (const page of pages) {
      page.request();
      sent += 1;
      for (let retry = 0; retry < 8 && page.tryRetry(); retry += 1) sent += 1;
    }
    c.t += 1000;
  }
  assert.ok(sent <= 200 * 60 * 1.1 + 200, `sent ${sent}`);
});

test('full jitter covers [0, min(cap, base·2^n)] and Retry-After wins', () => {
  assert.equal(fullJitter(0, { base: 500, cap: 30000, random: () => 1 }), 500);
  assert.equal(fullJitter(3, { base: 500, cap: 30000, random: () => 1 }), 4000);
  assert.equal(fullJitter(40, { base: 500, cap: 30000, random: () => 1 }), 30000);
  assert.equal(fullJitter(5, { base: 500, cap: 30000, random: () => 0 }), 0);
  const waits = Array.from({ length: 2000 }, () => fullJitter(4, { base: 500, cap: 8000 }));
  assert.ok(Math.min(...waits) < 400 && Math.max(...waits) > 7600 && Math.max(...waits) <= 8000);
  assert.equal(retryDelay(9, { retryAfterMs: 1250, base: 1, cap: 2 }), 1250);
  assert.equal(retryDelay(9, { retryAfterMs: null, base: 1, cap: 2, random: () => 1 }), 2);
  assert.equal(retryDelay(0, { retryAfterMs: 1e12 }), 300000);
});

test('retryPause waits for the budget when it holds no retry', async () => {
  const budget = new RetryBudget({ ratio: 0.1, reserve: 1, ttlMs: 40, now: () => performance.now() });
  assert.equal(budget.tryRetry(), true); // the reserve is spent: the next retry in ~40 ms
  const started = performance.now();
  const waited = await retryPause(0, { base: 1, cap: 10, of: budget });
  assert.ok(performance.now() - started >= 35, `returned after ${performance.now() - started} ms`);
  assert.ok(waited >= 10);
  assert.equal(budget.retries, 2);
  assert.ok(budget.denied >= 1);
});

test("hls.js's retries come out of the budget", () => {
  const c = clock();
  const budget = new RetryBudget({ ratio: 0.1, reserve: 1, ttlMs: 60000, now: c.now });
  const policies = hlsLoadPolicies(budget);
  const frag = policies.fragLoadPolicy.default.errorRetry;
  const playlist = policies.playlistLoadPolicy.default.timeoutRetry;
  assert.equal(frag.maxNumRetry, 6); // hls.js's own counts are kept
  assert.equal(frag.shouldRetry(frag, 0, false, { code: 503 }, false), false); // hls.js said no
  assert.equal(budget.retries, 0); // and nothing was taken
  assert.equal(frag.shouldRetry(frag, 0, false, { code: 503 }, true), true); // the reserve
  assert.equal(playlist.shouldRetry(playlist, 0, true, undefined, true), false); // spent
  for (let i = 0; i < 10; i += 1) budget.request();
  assert.equal(playlist.shouldRetry(playlist, 0, true, undefined, true), true);
  assert.equal(budget.retries, 2);
});

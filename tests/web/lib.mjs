// Shared helpers for the browser scenarios: Debian's chromium driven by playwright-core
// (never a downloaded browser), a check list that ends up as one JSON line on stdout, page
// error collection, screenshots, and the Web Audio measurements for the media tests.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

export function chromiumArgs(wav) {
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--autoplay-policy=no-user-gesture-required',
    '--use-fake-device-for-media-stream',
    '--use-fake-ui-for-media-stream',
  ];
  if (wav) args.push(`--use-file-for-fake-audio-capture=${wav}`);
  return args;
}

export async function launch(wav) {
  return chromium.launch({
    executablePath: process.env.MAJLIS_CHROMIUM || '/usr/bin/chromium',
    args: chromiumArgs(wav),
    timeout: 30000,
  });
}

/** A scenario's record: named checks, page errors, notes; printed as one JSON line. */
export class Report {
  constructor(name) {
    this.name = name;
    this.checks = [];
    this.errors = [];
    this.notes = {};
    this.console = []; // the pages' warnings and errors, newest last, for failure messages
    this.started = Date.now();
  }

  ok(name, detail = '') {
    this.checks.push({ name, ok: true, detail: String(detail), ms: Date.now() - this.started });
  }

  fail(name, detail) {
    this.checks.push({ name, ok: false, detail: String(detail), ms: Date.now() - this.started });
  }

  /** Run step(); a throw records a failed check and stops the scenario. */
  async step(name, step) {
    try {
      const detail = await step();
      this.ok(name, detail ?? '');
      return detail;
    } catch (error) {
      const logs = this.console.length ? `\n  console:\n    ${this.console.join('\n    ')}` : '';
      this.fail(name, `${error?.stack || error}${logs}`);
      throw new StepFailed(name);
    }
  }

  watch(page, label) {
    page.on('pageerror', (error) => this.errors.push(`${label}: uncaught ${error.message}`));
    page.on('console', (message) => {
      const text = message.text();
      if (message.type() === 'warning' || message.type() === 'error') {
        this.console = [...this.console.slice(-19), `${label}: ${text}`];
      }
      if (message.type() === 'error' && /Content.Security.Policy|Refused to/i.test(text)) {
        this.errors.push(`${label}: CSP ${text}`);
      }
    });
    // The console's "Failed to load resource" does not say which: keep the URL beside it.
    page.on('response', (response) => {
      if (response.status() >= 400) {
        const { pathname } = new URL(response.url());
        this.console = [...this.console.slice(-19), `${label}: ${response.status()} ${pathname}`];
      }
    });
    return page;
  }

  print(extra = {}) {
    const ok = this.checks.every((c) => c.ok) && this.errors.length === 0;
    process.stdout.write(
      `${JSON.stringify({ scenario: this.name, ok, checks: this.checks, errors: this.errors, notes: this.notes, ...extra })}\n`,
    );
  }
}

export class StepFailed extends Error {}

export async function screenshot(page, dir, name) {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Both sizes of one page, restoring the viewport afterwards. */
export async function screenshotBoth(page, dir, name) {
  const before = page.viewportSize();
  const paths = [];
  for (const [size, viewport] of [
    ['desktop', DESKTOP],
    ['phone', PHONE],
  ]) {
    await page.setViewportSize(viewport);
    await page.waitForTimeout(150);
    paths.push(await screenshot(page, dir, `${name}-${size}`));
  }
  if (before) await page.setViewportSize(before);
  return paths;
}

/** Fetch JSON from inside a page (its cookies, its origin). */
/** Keep every peer connection a page makes within reach, as window.__peers. */
export async function trackPeers(page) {
  await page.addInitScript(() => {
    const Native = window.RTCPeerConnection;
    window.__peers = [];
    window.RTCPeerConnection = class extends Native {
      constructor(...args) {
        super(...args);
        window.__peers.push(this);
      }
    };
  });
}

export async function apiCall(page, method, path, body) {
  return page.evaluate(
    async ({ method, path, body }) => {
      const response = await fetch(`/api/v1${path}`, {
        method,
        headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      let data = null;
      try {
        data = JSON.parse(text);
      } catch {
        data = text;
      }
      return { status: response.status, data };
    },
    { method, path, body },
  );
}

export async function signUp(page, base, username, displayName, password = 'correct horse battery') {
  await page.goto(`${base}/signup`);
  await page.fill('#username', username);
  await page.fill('#display_name', displayName);
  await page.fill('#password', password);
  await Promise.all([page.waitForURL(`${base}/`), page.click('button[type=submit]')]);
  await page.waitForSelector('#logout');
  const me = await apiCall(page, 'GET', '/auth/me');
  return me.data;
}

// Audio -------------------------------------------------------------------------------------

/**
 * The dominant frequency of what an <audio> element plays (a media element, or a MediaStream
 * in srcObject such as a WebRTC mix-minus), measured with an AnalyserNode over `ms`.
 * Returns {frequency, peakDb, binHz} — frequency null while everything is silent.
 */
export async function dominantFrequency(page, selector, ms = 2000, probes = [440, 660]) {
  return page.evaluate(
    async ({ selector, ms, probes }) => {
      const element = document.querySelector(selector);
      if (!element) throw new Error(`no element ${selector}`);
      let source;
      if (element.srcObject) {
        const context = new AudioContext();
        await context.resume();
        source = context.createMediaStreamSource(element.srcObject);
      } else {
        // A media element can feed only one source node, ever: keep it on the element, and
        // keep it audible (the analyser taps the path to the loudspeaker).
        if (!element.__majlisTap) {
          const context = new AudioContext();
          const node = context.createMediaElementSource(element);
          node.connect(context.destination);
          element.__majlisTap = node;
        }
        source = element.__majlisTap;
        await source.context.resume();
      }
      const analyser = source.context.createAnalyser();
      analyser.fftSize = 8192;
      analyser.smoothingTimeConstant = 0;
      source.connect(analyser);
      const bins = new Float32Array(analyser.frequencyBinCount);
      const sum = new Float64Array(analyser.frequencyBinCount);
      let frames = 0;
      const until = performance.now() + ms;
      while (performance.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        analyser.getFloatFrequencyData(bins);
        for (let i = 0; i < bins.length; i += 1) sum[i] += 10 ** (bins[i] / 10);
        frames += 1;
      }
      source.disconnect(analyser);
      let best = 1;
      for (let i = 2; i < sum.length; i += 1) if (sum[i] > sum[best]) best = i;
      const binHz = source.context.sampleRate / analyser.fftSize;
      const db = (bin) => 10 * Math.log10(Math.max(1e-30, sum[bin]) / Math.max(1, frames));
      // Level at each probe frequency: the strongest bin within ±2 bins of it.
      const at = {};
      for (const hz of probes) {
        const centre = Math.round(hz / binHz);
        let strongest = centre;
        for (let i = centre - 2; i <= centre + 2; i += 1) if (sum[i] > sum[strongest]) strongest = i;
        at[hz] = db(strongest);
      }
      const peakDb = db(best);
      return { frequency: peakDb > -90 ? best * binHz : null, peakDb, binHz, at };
    },
    { selector, ms, probes },
  );
}

/** How far (dB) the tone at `hz` sits below the strongest one in `measured`. */
export function dbBelowPeak(measured, hz) {
  return measured.peakDb - measured.at[hz];
}

/** True when `measured` is the expected tone within two FFT bins. */
export function isTone(measured, expectedHz) {
  return measured.frequency !== null && Math.abs(measured.frequency - expectedHz) <= 2 * measured.binHz + 1;
}

/** How far (dB) each of `freqs` sits below the strongest tone: {hz: dB, ...}, rounded. */
export function levelsBelowPeak(measured, freqs = Object.keys(measured.at).map(Number)) {
  return Object.fromEntries(freqs.map((hz) => [hz, Math.round(dbBelowPeak(measured, hz) * 10) / 10]));
}

/** True when every tone of `freqs` is within `withinDb` of the strongest one. */
export function allAudible(measured, freqs, withinDb = 10) {
  return measured.frequency !== null && freqs.every((hz) => dbBelowPeak(measured, hz) <= withinDb);
}

/**
 * Measure windows of `windowMs` one after another until `accept(measured)` holds or
 * `timeout` ms pass. Returns {measured, ms (from the call to the end of the accepted
 * window), windows}; throws with the last measurement on timeout.
 */
export async function measureUntil(page, selector, accept, { windowMs = 1000, timeout = 20000, probes } = {}) {
  const started = Date.now();
  let measured = null;
  let windows = 0;
  while (Date.now() - started < timeout) {
    measured = await dominantFrequency(page, selector, windowMs, probes);
    windows += 1;
    if (accept(measured)) return { measured, ms: Date.now() - started, windows };
  }
  throw new Error(`no measurement met the condition within ${timeout} ms (${windows} windows); last: ${JSON.stringify(measured)}`);
}

/**
 * Where each tone is in a recording: the page fetches `url`, decodes it (decodeAudioData)
 * and measures `freqs` with a Hann-windowed Goertzel filter over blocks of `blockSeconds`.
 * Each block is classified by `classify({hz: dBFS})` and consecutive blocks of one kind are
 * merged, bridging blips of another kind up to `bridge` seconds long (counted as `blips`):
 * returns {duration, runs: [{kind, from, to, blips}]} (seconds).
 */
export async function toneRuns(page, url, freqs, classify, { blockSeconds = 0.25, bridge = 0.5 } = {}) {
  const { duration, blocks } = await page.evaluate(
    async ({ url, freqs, blockSeconds }) => {
      const response = await fetch(url);
      if (!response.ok) throw new Error(`${url}: ${response.status}`);
      const context = new OfflineAudioContext(1, 1, 48000);
      const decoded = await context.decodeAudioData(await response.arrayBuffer());
      const samples = decoded.getChannelData(0);
      const rate = decoded.sampleRate;
      const n = Math.round(blockSeconds * rate);
      const window = Float32Array.from({ length: n }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (n - 1)));
      const gain = window.reduce((a, b) => a + b, 0) / 2;
      const blocks = [];
      for (let start = 0; start + n <= samples.length; start += n) {
        const levels = {};
        for (const hz of freqs) {
          const coefficient = 2 * Math.cos((2 * Math.PI * hz) / rate);
          let s1 = 0;
          let s2 = 0;
          for (let i = 0; i < n; i += 1) {
            const s0 = samples[start + i] * window[i] + coefficient * s1 - s2;
            s2 = s1;
            s1 = s0;
          }
          const power = s1 * s1 + s2 * s2 - coefficient * s1 * s2;
          levels[hz] = 20 * Math.log10(Math.max(1e-9, Math.sqrt(Math.max(0, power)) / gain));
        }
        blocks.push(levels);
      }
      return { duration: decoded.duration, blocks };
    },
    { url, freqs, blockSeconds },
  );
  const raw = [];
  blocks.forEach((levels, i) => {
    const kind = classify(levels);
    const last = raw.at(-1);
    if (last && last.kind === kind) last.to = (i + 1) * blockSeconds;
    else raw.push({ kind, from: i * blockSeconds, to: (i + 1) * blockSeconds, blips: 0 });
  });
  const runs = [];
  raw.forEach((run, i) => {
    const last = runs.at(-1);
    if (last && last.kind === run.kind) {
      last.to = run.to;
    } else if (last && run.to - run.from <= bridge && raw[i + 1]?.kind === last.kind) {
      last.to = run.to; // a blip between two runs of one kind
      last.blips += 1;
    } else {
      runs.push({ ...run });
    }
  });
  return { duration, runs };
}

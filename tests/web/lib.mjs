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
      this.fail(name, error?.stack || error);
      throw new StepFailed(name);
    }
  }

  watch(page, label) {
    page.on('pageerror', (error) => this.errors.push(`${label}: uncaught ${error.message}`));
    page.on('console', (message) => {
      const text = message.text();
      if (message.type() === 'error' && /Content.Security.Policy|Refused to/i.test(text)) {
        this.errors.push(`${label}: CSP ${text}`);
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

// One real listener for bench/hlsjs_latency.py: Debian's headless Chromium opens the space's
// page, presses "Listen" as anyone would (the page's own player: chained segment streams,
// or with PLAYER=hlsjs hls.js in lowLatencyMode),
// and an AudioWorklet on the <audio> element's output stamps every tone-burst onset with
// the wall time at which that sample reaches the audio output (AudioContext
// getOutputTimestamp maps the context's clock to performance time).
//
//   node bench/hlsjs_listener.mjs BASE_URL SPACE_ID SECONDS [PLAYER]
//
// Prints one JSON line: {onsets: [epoch ms], ...what the player did}.

import { launch } from '../tests/web/lib.mjs';

const [base, spaceId, secondsArg, player = ''] = process.argv.slice(2);
if (!base || !spaceId || !secondsArg) {
  process.stderr.write('usage: node bench/hlsjs_listener.mjs BASE_URL SPACE_ID SECONDS\n');
  process.exit(2);
}
const seconds = Number(secondsArg);
// -20 dBFS (amplitude 0.1), the same onset rule as bench/latency.py: the first sample above
// it after at least 0.5 s below.
const THRESHOLD = 0.1;
const MIN_SILENCE_S = 0.5;

const WORKLET = `
class Onsets extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.threshold = options.processorOptions.threshold;
    this.minSilence = Math.round(options.processorOptions.minSilence * sampleRate);
    this.quiet = 0;
  }
  process(inputs) {
    const channels = inputs[0];
    if (channels.length === 0) return true;
    const length = channels[0].length;
    for (let i = 0; i < length; i += 1) {
      let peak = 0;
      for (const channel of channels) peak = Math.max(peak, Math.abs(channel[i]));
      if (peak > this.threshold) {
        if (this.quiet >= this.minSilence) this.port.postMessage(currentTime + i / sampleRate);
        this.quiet = 0;
      } else {
        this.quiet += 1;
      }
    }
    return true;
  }
}
registerProcessor('majlis-onsets', Onsets);
`;

async function installTap(page) {
  await page.evaluate(
    async ({ code, threshold, minSilence }) => {
      const audio = document.querySelector('#player');
      const context = new AudioContext({ latencyHint: 'interactive' });
      const url = URL.createObjectURL(new Blob([code], { type: 'text/javascript' }));
      await context.audioWorklet.addModule(url);
      const source = context.createMediaElementSource(audio);
      const detector = new AudioWorkletNode(context, 'majlis-onsets', {
        processorOptions: { threshold, minSilence },
      });
      // The detector's output is silent; it is connected only so the graph pulls it.
      const mute = new GainNode(context, { gain: 0 });
      source.connect(context.destination);
      source.connect(detector).connect(mute).connect(context.destination);
      const tap = { onsets: [], rendered: [], waiting: 0, playing: 0, outputLatency: [], context };
      detector.port.onmessage = ({ data: at }) => {
        const stamp = context.getOutputTimestamp();
        tap.outputLatency.push(context.outputLatency ?? null);
        tap.onsets.push(performance.timeOrigin + stamp.performanceTime + (at - stamp.contextTime) * 1000);
        // Cross-check: when the graph rendered the sample (before the output's own delay).
        tap.rendered.push(performance.timeOrigin + performance.now() - (context.currentTime - at) * 1000);
      };
      audio.addEventListener('waiting', () => (tap.waiting += 1));
      audio.addEventListener('playing', () => (tap.playing += 1));
      await context.resume();
      window.__majlisTap = tap;
    },
    { code: WORKLET, threshold: THRESHOLD, minSilence: MIN_SILENCE_S },
  );
}

const browser = await launch();
const result = { onsets: [], errors: [] };
try {
  // The page's CSP rightly refuses blob: scripts; the measuring worklet is the bench's own.
  const context = await browser.newContext({ bypassCSP: true });
  const page = await context.newPage();
  page.on('pageerror', (error) => result.errors.push(error.message));
  await page.goto(`${base}/spaces/${spaceId}${player ? `?player=${player}` : ''}`);
  await page.waitForSelector('#listen-button:visible', { timeout: 20000 });
  await installTap(page);
  result.clicked = Date.now();
  await page.click('#listen-button');
  await page.waitForFunction(() => window.__majlisTap.playing > 0, null, { timeout: 20000 });
  result.playing = Date.now();
  await page.waitForTimeout(seconds * 1000);
  Object.assign(
    result,
    await page.evaluate(() => {
      const tap = window.__majlisTap;
      const audio = document.querySelector('#player');
      const buffered = audio.buffered.length ? audio.buffered.end(audio.buffered.length - 1) : null;
      return {
        onsets: tap.onsets,
        rendered: tap.rendered,
        waiting: tap.waiting,
        playing_events: tap.playing,
        output_latency_s: tap.outputLatency.at(-1) ?? null,
        base_latency_s: tap.context.baseLatency,
        buffered_ahead_s: buffered === null ? null : buffered - audio.currentTime,
        playback_rate: audio.playbackRate,
        connection: document.querySelector('#connection')?.dataset.state ?? null,
        kind: audio.dataset.kind ?? null, // how the page played: edge, segments, hlsjs, native
      };
    }),
  );
} catch (error) {
  result.errors.push(String(error?.stack || error));
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(result)}\n`);

// Plays a live space from chained segment requests: the origin (and the edge in front of it)
// answers GET s{n}.m4s for the segment being written at once and streams its parts as they
// are written, so one request per segment carries the audio at LL-HLS latency, where hls.js
// makes two per part. Each chunk goes into a Media Source buffer as it arrives.
//
// The playlist is read once, for the init segment and the segment being written; after that
// the player only asks for s{n}, s{n+1}, … A gap (a media node restarting) is jumped over;
// anything it cannot follow ends in an error the Player answers by falling back to hls.js.

import { budget, retryPause } from './retry.js';

const MIME = 'audio/mp4; codecs="mp4a.40.2"';

// How far behind the newest audio received the player keeps itself: a part (256 ms) and
// a margin for the network's jitter.
export const TARGET_S = 0.5;
// Further behind than this, it seeks forward; keeps 30 s of audio behind the playhead.
const MAX_BEHIND_S = 1.5;
const KEEP_S = 30;
// A stream starts with a burst (the open segment's parts so far; on the edge, up to a
// segment for a space's first listener): for this long after the start, the player
// follows the newest audio closely, so the burst does not become lasting delay.
const SETTLE_MS = 3000;
const SETTLE_SLACK_S = 0.25;

export function segmentStreamUsable() {
  return typeof MediaSource !== 'undefined' && MediaSource.isTypeSupported(MIME);
}

export class SegmentStream {
  /** onFatal(reason, status) is called once when the stream cannot go on. */
  constructor(audio, tokenOf, onFatal) {
    this.audio = audio;
    this.tokenOf = tokenOf; // url → the same url with the newest playback token
    this.onFatal = onFatal;
    this.controller = new AbortController();
    this.source = null;
    this.buffer = null;
    this.objectUrl = null;
    this.settleUntil = 0;
    this.target = TARGET_S; // s behind the newest audio; a stream may ask for more
    this.partS = 0.256; // a part's duration, from the playlist's PART-TARGET
  }

  async start(playlistUrl) {
    const { signal } = this.controller;
    const playlist = await this.text(playlistUrl);
    const init = /#EXT-X-MAP:URI="([^"]+)"/.exec(playlist);
    const open = newestSegment(playlist);
    const partTarget = /PART-TARGET=([\d.]+)/.exec(playlist);
    if (partTarget) this.partS = Number(partTarget[1]);
    if (!init || open === null) throw new Error('the playlist names no open segment');
    const base = new URL('.', new URL(playlistUrl, location.href)).href;
    this.source = new MediaSource();
    this.objectUrl = URL.createObjectURL(this.source);
    this.audio.src = this.objectUrl;
    await new Promise((resolve) => this.source.addEventListener('sourceopen', resolve, { once: true }));
    this.buffer = this.source.addSourceBuffer(MIME);
    this.settleUntil = performance.now() + SETTLE_MS;
    await this.append(new Uint8Array(await this.bytes(new URL(init[1], base).href)));
    this.follow(base, open, signal).catch((error) => {
      if (!signal.aborted) this.onFatal(error.message, error.status);
    });
  }

  async follow(base, first, signal) {
    let msn = first;
    let failures = 0;
    while (!signal.aborted) {
      if (failures === 0) budget.request(); // a segment asked for on schedule (not a retry)
      const response = await fetch(this.tokenOf(new URL(`s${msn}.m4s`, base).href), { signal }).catch((error) => {
        if (signal.aborted) throw error;
        return null;
      });
      if (response?.ok) {
        failures = 0;
        const reader = response.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          await this.append(value);
          this.keepLive();
        }
        msn += 1;
        continue;
      }
      const status = response?.status ?? 0;
      if (status === 401 || status === 403) throw withStatus(new Error('the playback token was refused'), status);
      failures += 1;
      if (failures > 6) throw withStatus(new Error(`segment ${msn}: ${status || 'no answer'}`), status);
      if (status === 404 && failures > 1) msn = (await this.resync(base)) ?? msn + 1;
      // Aborted: the loop ends (stop() or a new pipeline), as before.
      await retryPause(failures - 1, { base: 250, cap: 4000, signal }).catch(() => undefined);
    }
  }

  /** The segment being written now, from a fresh look at the playlist. */
  async resync(base) {
    try {
      return newestSegment(await this.text(new URL('index.m3u8', base).href));
    } catch {
      return null;
    }
  }

  /** Stay about TARGET_S behind the newest audio: seek there at the start (and while the
   * first burst arrives), after a gap (a new life of the media node) and whenever the
   * player fell too far behind. */
  keepLive() {
    const ranges = this.buffer.buffered;
    if (!ranges.length) return;
    const last = ranges.length - 1;
    const end = ranges.end(last);
    const playhead = this.audio.currentTime;
    const lost = playhead < ranges.start(last) || playhead > end;
    const target = this.target;
    const behind = performance.now() < this.settleUntil ? target + SETTLE_SLACK_S : Math.max(MAX_BEHIND_S, target + 1);
    if ((lost || end - playhead > behind) && end - ranges.start(last) >= target) {
      this.audio.currentTime = end - target;
    }
    if (!this.buffer.updating && playhead - ranges.start(0) > KEEP_S * 2) {
      this.buffer.remove(0, playhead - KEEP_S);
    }
  }

  append(chunk) {
    return new Promise((resolve, reject) => {
      const buffer = this.buffer;
      const run = () => {
        buffer.addEventListener('updateend', resolve, { once: true });
        buffer.addEventListener('error', () => reject(new Error('the browser refused the audio')), { once: true });
        buffer.appendBuffer(chunk);
      };
      if (buffer.updating) buffer.addEventListener('updateend', run, { once: true });
      else run();
    });
  }

  async text(url) {
    const response = await fetch(this.tokenOf(url), { signal: this.controller.signal });
    if (!response.ok) throw withStatus(new Error(`${response.status} for the playlist`), response.status);
    return response.text();
  }

  async bytes(url) {
    const response = await fetch(this.tokenOf(url), { signal: this.controller.signal });
    if (!response.ok) throw withStatus(new Error(`${response.status} for ${url}`), response.status);
    return response.arrayBuffer();
  }

  stop() {
    this.controller.abort();
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
    this.audio.removeAttribute('src');
    this.audio.load();
  }
}

/** The media sequence number of the segment being written: the preload hint's, else the
 * last part's, else one past the last listed segment. */
function newestSegment(playlist) {
  const hint = /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p\d+-(\d+)-\d+\.m4s"/.exec(playlist);
  if (hint) return Number(hint[1]);
  const parts = [...playlist.matchAll(/URI="p\d+-(\d+)-\d+\.m4s"/g)];
  if (parts.length) return Number(parts[parts.length - 1][1]);
  const sequence = /#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(playlist);
  const segments = playlist.split('\n').filter((line) => /^s\d+\.m4s$/.test(line.trim())).length;
  return sequence && !/#EXT-X-ENDLIST/.test(playlist) ? Number(sequence[1]) + segments : null;
}

export function withStatus(error, status) {
  error.status = status;
  return error;
}

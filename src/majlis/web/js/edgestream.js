// Plays a live space from the edge's listener stream (GET /hls/{space}/{token}/stream): one
// long response that carries the space's fMP4 fragments as they are made, so a listener
// costs the edge one open connection instead of a request per part or per segment.
//
// The init segment comes from the playlist, as for the segment stream. The edge ends a
// stream when its token's expiry window closes (a ban takes effect that way) and says when
// that will be; the player opens the next stream, with the newest token the heartbeat
// brought, a moment before, and asks again at once if a stream ends early. A new stream
// starts with the edge's last two messages, which covers the moment of switching; what of
// them the player already has is dropped by an append window. A stream that carries
// nothing for SILENT_MS is dropped and asked for again; after repeated failures the
// Player falls back to the segment stream.

import { budget, retryPause } from './retry.js';
import { SegmentStream, TARGET_S, withStatus } from './segmentstream.js';

// Fragments come every 256 ms while the space is live: this much quiet means the stream is
// stuck (an edge or its feeder restarting), not that the space is silent.
const SILENT_MS = 4000;
const MAX_FAILURES = 4;
// The edge may send several parts at once (majlis edge --stream-parts, told in the
// X-Majlis-Stream-Parts header): the player then keeps that much audio, and a margin for
// the network's jitter, behind the newest.
const MARGIN_S = 0.25;
const NOT_HERE = new Set([404, 405, 501]);
const OVERLAP_S = 0.01;
// The edge says how long a stream has left (X-Majlis-Stream-Left); the next one is opened
// this long before, so that reconnecting never has to be quicker than the buffer.
const RENEW_AHEAD_S = 1.5;

export class EdgeStream extends SegmentStream {
  constructor(audio, tokenOf, onFatal, streamUrl) {
    super(audio, tokenOf, onFatal);
    this.streamUrl = streamUrl;
    this.reconnects = 0; // streams that ended after carrying audio (window ends, edge restarts)
    this.next = null; // {controller, response}: the stream opened before this one ends
  }

  async follow(_base, _first, signal) {
    let failures = 0;
    while (!signal.aborted) {
      if (failures === 0) budget.request(); // a stream opened on schedule (not a retry)
      const started = performance.now();
      const { status, chunks } = await this.listen(signal);
      if (signal.aborted) return;
      if (status === 401 || status === 403) throw withStatus(new Error('the playback token was refused'), status);
      // An edge without listener streams (a CDN named as majlis edge): no use asking again.
      if (NOT_HERE.has(status) && this.reconnects === 0) throw withStatus(new Error(`the edge has no stream (${status})`), status);
      if (chunks > 0 && performance.now() - started > 1000) {
        // It carried live audio, beyond the two fragments a stream starts with.
        failures = 0;
        this.reconnects += 1;
        continue;
      }
      failures += 1;
      if (failures > MAX_FAILURES) throw withStatus(new Error(`the edge stream: ${status || 'no audio'}`), status);
      await retryPause(failures - 1, { base: 250, cap: 4000, signal }).catch(() => undefined);
    }
  }

  /** A new stream starts with messages the player may already have. Appended again, they
   * would replace audio near the playhead, which makes Chromium stop for a moment
   * ('waiting'): drop whatever starts before the end of what is buffered instead. */
  async keepWhatWeHave() {
    const buffer = this.buffer;
    if (!buffer.buffered.length) return;
    if (buffer.updating) await new Promise((resolve) => buffer.addEventListener('updateend', resolve, { once: true }));
    const end = buffer.buffered.end(buffer.buffered.length - 1);
    // A little before the end: a frame starting exactly there must not fall out by rounding.
    buffer.appendWindowStart = Math.max(0, end - OVERLAP_S);
  }

  /** Once new audio has come past the old end, accept everything again: a media node's
   * new life may start its timeline anew. */
  openWindow() {
    const buffer = this.buffer;
    if (!buffer.appendWindowStart || buffer.updating || !buffer.buffered.length) return;
    if (buffer.buffered.end(buffer.buffered.length - 1) > buffer.appendWindowStart + 2 * OVERLAP_S) {
      buffer.appendWindowStart = 0;
    }
  }

  /** One stream request, read to its end: its status and how many chunks it carried. A
   * network error or a silent stream counts as status 0; the browser refusing the audio
   * is thrown. */
  async listen(signal) {
    const pending = this.next;
    this.next = null;
    const request = pending?.controller ?? new AbortController();
    const abort = () => request.abort();
    signal.addEventListener('abort', abort, { once: true });
    let timer = setTimeout(abort, SILENT_MS);
    let renew = null;
    let chunks = 0;
    const lost = () => null;
    await this.keepWhatWeHave();
    try {
      const opening = pending?.response ?? fetch(this.tokenOf(this.streamUrl), { signal: request.signal });
      const response = await opening.catch(lost);
      if (!response?.ok) return { status: response?.status ?? 0, chunks };
      const left = Number(response.headers.get('x-majlis-stream-left'));
      if (left > RENEW_AHEAD_S + 1) renew = setTimeout(() => this.openNext(signal, abort), (left - RENEW_AHEAD_S) * 1000);
      const parts = Number(response.headers.get('x-majlis-stream-parts')) || 1;
      this.target = Math.max(TARGET_S, parts * this.partS + MARGIN_S);
      const reader = response.body.getReader();
      for (;;) {
        const read = await reader.read().catch(lost);
        if (!read) return { status: 0, chunks };
        if (read.done) return { status: response.status, chunks };
        clearTimeout(timer);
        timer = setTimeout(abort, SILENT_MS);
        await this.append(read.value);
        this.openWindow();
        this.keepLive();
        chunks += 1;
      }
    } finally {
      clearTimeout(timer);
      clearTimeout(renew);
      signal.removeEventListener('abort', abort);
    }
  }

  /** Open the next stream (with the newest token) while this one still plays; once it
   * answers, end this one: listen() then goes on with it. */
  openNext(signal, endCurrent) {
    const controller = new AbortController();
    signal.addEventListener('abort', () => controller.abort(), { once: true });
    const response = fetch(this.tokenOf(this.streamUrl), { signal: controller.signal });
    this.next = { controller, response };
    response.then((answer) => answer.ok && endCurrent(), () => undefined);
  }
}

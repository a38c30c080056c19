// Plays a live space from the edge's listener stream (GET /hls/{space}/{token}/stream): one
// long response that carries the space's fMP4 fragments as they are made, so a listener
// costs the edge one open connection instead of a request per part or per segment.
//
// The init segment comes from the playlist, as for the segment stream. The edge ends a
// stream when its token's expiry window closes (a ban takes effect that way); the player
// then asks again at once with the newest token the heartbeat brought. A new stream starts
// with the edge's last two messages, which covers the moment of reconnecting: the
// fragments it already has are appended again over themselves. A stream that carries nothing for
// SILENT_MS is dropped and asked for again; after repeated failures the Player falls back
// to the segment stream.

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

export class EdgeStream extends SegmentStream {
  constructor(audio, tokenOf, onFatal, streamUrl) {
    super(audio, tokenOf, onFatal);
    this.streamUrl = streamUrl;
    this.reconnects = 0; // streams that ended after carrying audio (window ends, edge restarts)
  }

  async follow(_base, _first, signal) {
    let failures = 0;
    while (!signal.aborted) {
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
      await new Promise((resolve) => setTimeout(resolve, Math.min(4000, 250 * 2 ** failures)));
    }
  }

  /** One stream request, read to its end: its status and how many chunks it carried. A
   * network error or a silent stream counts as status 0; the browser refusing the audio
   * is thrown. */
  async listen(signal) {
    const request = new AbortController();
    const abort = () => request.abort();
    signal.addEventListener('abort', abort, { once: true });
    let timer = setTimeout(abort, SILENT_MS);
    let chunks = 0;
    const lost = () => null;
    try {
      const response = await fetch(this.tokenOf(this.streamUrl), { signal: request.signal }).catch(lost);
      if (!response?.ok) return { status: response?.status ?? 0, chunks };
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
        this.keepLive();
        chunks += 1;
      }
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', abort);
    }
  }
}

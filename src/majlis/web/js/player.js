// Plays a space: live LL-HLS or a replay, through hls.js where the browser has Media Source
// Extensions, else the browser's own HLS (Safari, iOS) — canPlayType tells.
//
// A live space plays, where the browser has Media Source Extensions, from the edge's
// listener stream when the join answered one (edgestream.js: one open response per
// listener), else from chained segment streams (segmentstream.js: one request per 2 s
// segment), else through hls.js, else the browser's own HLS. Whatever cannot go on falls
// back to the next: edge stream → segment stream → hls.js. Replays use hls.js or native HLS.
// hls.js is loaded on demand from /vendor/hls.mjs (the npm install of the project). The
// playback token is a segment of the path (/hls/{space}/{token}/index.m3u8), so every
// relative URI of the playlist carries it, through the edge too; setToken() swaps it in for
// every later request, so a token refreshed by the heartbeat is used at once.
// URL flag ?player=edge, ?player=segments, ?player=hlsjs or ?player=native forces one path
// (tests, debugging).
//
// Events (detail in parentheses): state ({state: loading|playing|buffering|reconnecting|
// paused|ended|failed, reason}), time, duration.

import { budget, hlsLoadPolicies, retryDelay } from './retry.js';
import { EdgeStream } from './edgestream.js';
import { SegmentStream, segmentStreamUsable } from './segmentstream.js';
import { t } from './i18n.js';

const HLS_TYPE = 'application/vnd.apple.mpegurl';
let hlsModule = null;

async function loadHls() {
  hlsModule ??= import('/vendor/hls.mjs').then((module) => module.default);
  try {
    return await hlsModule;
  } catch (error) {
    hlsModule = null;
    throw error;
  }
}

export function nativeHls(audio) {
  return Boolean(audio.canPlayType(HLS_TYPE));
}

const TOKEN_SEGMENT = /\/play\.[^/?#]+\//;

// The URL with the newest token in place of the one it carries; URLs without one (replays)
// are left as they are.
export function withToken(url, token) {
  if (!token || !TOKEN_SEGMENT.test(url)) return url;
  return url.replace(TOKEN_SEGMENT, `/${token}/`);
}

export class Player extends EventTarget {
  constructor(audio, { prefer = new URLSearchParams(location.search).get('player') } = {}) {
    super();
    this.audio = audio;
    this.prefer = prefer;
    this.hls = null;
    this.stream = null;
    this.broken = new Set(); // kinds that failed here once: not tried again on this page
    this.url = null;
    this.streamUrl = '';
    this.token = null;
    this.live = true;
    this.autoplay = true;
    this.kind = null;
    this.state = 'idle';
    this.failures = 0;
    this.retryTimer = null;
    this.stalledTimer = null;
    this.bindMedia();
  }

  on(type, fn) {
    this.addEventListener(type, (event) => fn(event.detail));
    return this;
  }

  /** The way this player plays now, also shown on the audio element as data-kind. */
  use(kind) {
    this.kind = kind;
    if (kind) this.audio.dataset.kind = kind;
    else delete this.audio.dataset.kind;
  }

  setState(state, reason = '') {
    if (this.state === state && !reason) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, reason, kind: this.kind } }));
  }

  bindMedia() {
    const audio = this.audio;
    audio.addEventListener('playing', () => {
      this.failures = 0;
      this.setState('playing');
    });
    audio.addEventListener('waiting', () => {
      if (this.url) this.setState('buffering');
    });
    audio.addEventListener('pause', () => {
      if (this.url && !audio.ended) this.setState('paused');
    });
    audio.addEventListener('ended', () => this.setState('ended'));
    audio.addEventListener('timeupdate', () =>
      this.dispatchEvent(new CustomEvent('time', { detail: audio.currentTime })),
    );
    audio.addEventListener('durationchange', () =>
      this.dispatchEvent(new CustomEvent('duration', { detail: audio.duration })),
    );
    audio.addEventListener('error', () => {
      if (this.kind === 'native' && this.url) this.recover(t('listen.player.stopped'));
    });
  }

  /** Start playing url (a playlist). live=false for a replay (VOD); stream is the edge's
   * listener stream for this space, when the join answered one. */
  async play(url, { token = null, live = true, autoplay = true, stream = '' } = {}) {
    this.stop();
    this.url = url;
    this.streamUrl = stream;
    this.autoplay = autoplay;
    this.token = token;
    this.live = live;
    this.setState('loading');
    const kind = live ? this.streamKind() : null;
    if (kind) {
      await this.startStream(kind);
      if (autoplay) await this.resume();
      return;
    }
    const useNative = this.prefer === 'native' || (this.prefer !== 'hlsjs' && !(await this.hlsUsable()));
    if (useNative) {
      if (!nativeHls(this.audio)) {
        this.setState('failed', t('listen.player.no_hls'));
        return;
      }
      this.use('native');
      this.audio.src = withToken(url, token);
    } else {
      await this.startHls();
    }
    if (autoplay) await this.resume();
  }

  /** 'edge' or 'segments' where one of them can play this live space here, else null. */
  streamKind() {
    if (!segmentStreamUsable() || this.prefer === 'hlsjs' || this.prefer === 'native') return null;
    if (this.streamUrl && !this.broken.has('edge') && this.prefer !== 'segments') return 'edge';
    if (!this.broken.has('segments') && this.prefer !== 'edge') return 'segments';
    return null;
  }

  async startStream(kind) {
    this.use(kind);
    const tokenOf = (url) => withToken(url, this.token);
    const onFatal = (reason, status) => {
      if (this.stream !== stream) return;
      this.stopMedia();
      if (status === 401 || status === 403) {
        this.setState('failed', t('listen.player.refused'));
        return;
      }
      // Whatever this stream could not follow, the next kind may.
      console.warn(`majlis player: the ${kind} stream stopped (${reason}); trying the next way`);
      this.broken.add(kind);
      const next = this.streamKind();
      const started = next ? this.startStream(next) : this.startHls();
      started.then(() => this.autoplay && this.resume());
    };
    const stream =
      kind === 'edge'
        ? new EdgeStream(this.audio, tokenOf, onFatal, this.streamUrl)
        : new SegmentStream(this.audio, tokenOf, onFatal);
    this.stream = stream;
    try {
      await stream.start(this.url);
    } catch (error) {
      if (this.stream === stream) stream.onFatal(error.message, error.status);
    }
  }

  async hlsUsable() {
    try {
      const Hls = await loadHls();
      return Hls.isSupported();
    } catch {
      return false; // not installed or blocked: fall back to the browser's own HLS
    }
  }

  async startHls() {
    const Hls = await loadHls();
    this.use('hlsjs');
    const hls = new Hls({
      lowLatencyMode: this.live,
      backBufferLength: this.live ? 30 : Infinity,
      enableWorker: true,
      ...hlsLoadPolicies(budget),
      xhrSetup: (xhr, requestUrl) => {
        budget.request(); // every load deposits; its retries withdraw (hlsLoadPolicies)
        // Every live URL carries the token: keep the newest one on all of them.
        const url = withToken(requestUrl, this.token);
        if (url !== requestUrl) xhr.open('GET', url, true);
      },
    });
    this.hls = hls;
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal) return;
      const status = data.response?.code;
      if (status === 403 || status === 401) {
        this.setState('failed', t('listen.player.refused'));
        this.stopMedia();
        return;
      }
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR && this.failures < 2) {
        this.failures += 1;
        hls.recoverMediaError();
        return;
      }
      const reason = status === 404 ? t('listen.player.not_available') : t('listen.player.lost');
      this.recover(reason);
    });
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      if (this.autoplay) this.resume();
    });
    hls.loadSource(withToken(this.url, this.token));
    hls.attachMedia(this.audio);
  }

  /** Rebuild the pipeline after a growing, fully jittered wait, once the page's retry
   * budget gives a retry (else wait again). */
  recover(reason) {
    if (!this.url) return;
    clearTimeout(this.retryTimer);
    const wait = retryDelay(this.failures, { base: 1000, cap: 15000 });
    this.failures += 1;
    this.setState('reconnecting', t('listen.player.retrying', { reason, seconds: Math.ceil(wait / 1000) }));
    this.stopMedia();
    this.retryTimer = setTimeout(async () => {
      if (!this.url) return;
      if (!budget.tryRetry()) {
        this.recover(reason);
        return;
      }
      if (this.kind === 'native') {
        this.audio.src = withToken(this.url, this.token);
      } else {
        await this.startHls();
      }
      if (this.autoplay) await this.resume();
    }, wait);
  }

  async resume() {
    try {
      await this.audio.play();
    } catch (error) {
      if (error?.name === 'NotAllowedError') this.setState('paused', t('listen.player.press_play'));
    }
  }

  pause() {
    this.audio.pause();
  }

  setToken(token) {
    this.token = token;
  }

  /** Where the listener is in the audio's media time: seconds since the space started
   * (`startedAt`, Unix seconds), which is what the fMP4 decode times and caption cues
   * count. The Media Source players append fragments at their own decode times, so it is
   * the position itself; hls.js and native HLS are placed by program date time. Null when
   * the player cannot tell. */
  mediaTime(startedAt) {
    if (this.kind === 'edge' || this.kind === 'segments') return this.audio.currentTime;
    if (startedAt == null) return null;
    if (this.kind === 'hlsjs') {
      const date = this.hls?.playingDate;
      return date ? date.getTime() / 1000 - startedAt : null;
    }
    const start = this.audio.getStartDate?.()?.getTime();
    return Number.isFinite(start) ? start / 1000 + this.audio.currentTime - startedAt : null;
  }

  stopMedia() {
    if (this.stream) {
      this.stream.stop();
      this.stream = null;
    }
    if (this.hls) {
      this.hls.destroy();
      this.hls = null;
    }
    if (this.kind === 'native') {
      this.audio.removeAttribute('src');
      this.audio.load();
    }
  }

  stop() {
    clearTimeout(this.retryTimer);
    this.stopMedia();
    this.url = null;
    this.use(null);
    this.setState('idle');
  }
}

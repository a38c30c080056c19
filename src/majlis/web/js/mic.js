// The microphone: capture, a level meter, and the WebRTC link that sends it to the space.
//
// Capture uses echo cancellation, noise suppression and auto gain (speakers hear each other
// through their loudspeakers). ?raw=1 on the page URL turns all three off, for tests whose
// fake microphone plays a known tone that must arrive unchanged.
//
// One RTCPeerConnection per speaker, audio only, Opus; the whole offer goes in one POST
// (no trickle ICE) and the answer's audio track is this speaker's mix-minus: everyone else.
// A data channel ('majlis') carries the media node's control messages: when the node hands
// the space over (a drain), it says 'move', and the link connects again through the API,
// which now reaches the node taking over, while the old connection keeps sending; once the
// new one is up it tells the old node 'moved', and the old node closes. Both nodes hear the
// microphone for that moment, so the recording loses nothing (media/rtc/control.py).

import { ApiError, backoff, speaking } from './api.js';
import { errorText, t } from './i18n.js';

export function captureConstraints(raw) {
  const processing = !raw;
  return {
    audio: {
      echoCancellation: processing,
      noiseSuppression: processing,
      autoGainControl: processing,
      channelCount: 1,
    },
    video: false,
  };
}

/** 'granted' | 'denied' | 'prompt' | 'unknown' (Permissions API missing or silent). */
export async function micPermission() {
  try {
    const status = await navigator.permissions.query({ name: 'microphone' });
    return status.state;
  } catch {
    return 'unknown';
  }
}

/** A person-readable reason for a getUserMedia failure. */
export function captureProblem(error) {
  switch (error?.name) {
    case 'NotAllowedError':
    case 'PermissionDeniedError':
      return { state: 'denied', reason: t('studio.mic.refused') };
    case 'NotFoundError':
    case 'DevicesNotFoundError':
      return { state: 'failed', reason: t('studio.mic.not_found') };
    case 'NotReadableError':
    case 'TrackStartError':
      return { state: 'failed', reason: t('studio.mic.busy') };
    case 'SecurityError':
      return { state: 'failed', reason: t('studio.mic.insecure') };
    default:
      return { state: 'failed', reason: t('studio.mic.could_not_start', { detail: String(error?.message || error) }) };
  }
}

export class Microphone extends EventTarget {
  constructor({ raw = false } = {}) {
    super();
    this.raw = raw;
    this.stream = null;
    this.context = null;
    this.meterTimer = null;
    this.muted = false;
  }

  get track() {
    return this.stream?.getAudioTracks()[0] ?? null;
  }

  get open() {
    return Boolean(this.track && this.track.readyState === 'live');
  }

  async start() {
    if (this.open) return this.stream;
    if (!navigator.mediaDevices?.getUserMedia) {
      const error = new Error('no getUserMedia');
      error.name = window.isSecureContext ? 'NotFoundError' : 'SecurityError';
      throw error;
    }
    this.stream = await navigator.mediaDevices.getUserMedia(captureConstraints(this.raw));
    this.track.enabled = !this.muted;
    this.track.addEventListener('ended', () =>
      this.dispatchEvent(new CustomEvent('ended', { detail: t('studio.mic.disconnected') })),
    );
    this.startMeter();
    return this.stream;
  }

  startMeter() {
    const AudioContextClass = window.AudioContext || window.webkitAudioContext;
    if (!AudioContextClass) return;
    this.context = new AudioContextClass();
    const source = this.context.createMediaStreamSource(this.stream);
    const analyser = this.context.createAnalyser();
    analyser.fftSize = 1024;
    source.connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    this.context.resume().catch(() => undefined);
    this.meterTimer = setInterval(() => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const sample of samples) sum += sample * sample;
      const rms = Math.sqrt(sum / samples.length);
      const db = this.muted ? -Infinity : 20 * Math.log10(rms || 1e-9);
      const fraction = Math.max(0, Math.min(1, (db + 60) / 60));
      this.dispatchEvent(new CustomEvent('level', { detail: { db, fraction } }));
    }, 60);
  }

  setMuted(muted) {
    this.muted = muted;
    if (this.track) this.track.enabled = !muted;
  }

  stop() {
    clearInterval(this.meterTimer);
    this.meterTimer = null;
    this.context?.close().catch(() => undefined);
    this.context = null;
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stream = null;
  }
}

function waitForIce(pc, timeoutMs) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === 'complete') done();
    };
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

// Resolves once `pc` is connected; rejects if it fails first or takes longer than `ms`.
function connected(pc, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error('the new connection took too long')), ms);
    const check = () => {
      if (pc.connectionState === 'connected') done();
      else if (['failed', 'closed'].includes(pc.connectionState)) done(new Error(`the new connection ${pc.connectionState}`));
    };
    const done = (error) => {
      clearTimeout(timer);
      pc.removeEventListener('connectionstatechange', check);
      if (error) reject(error);
      else resolve();
    };
    pc.addEventListener('connectionstatechange', check);
    check();
  });
}

// Close an old connection once its node has (it does when every speaker moved), or soon.
function retire(pc) {
  const timer = setTimeout(() => pc.close(), RETIRE_MS);
  pc.addEventListener('connectionstatechange', () => {
    if (['failed', 'closed'].includes(pc.connectionState)) {
      clearTimeout(timer);
      pc.close();
    }
  });
}

function preferOpus(transceiver) {
  const capabilities = window.RTCRtpSender?.getCapabilities?.('audio');
  if (!capabilities || !transceiver.setCodecPreferences) return;
  const opus = capabilities.codecs.filter((codec) => codec.mimeType.toLowerCase() === 'audio/opus');
  if (opus.length) transceiver.setCodecPreferences(opus);
}

const MAX_ATTEMPTS = 8; // about as long as before the quick first tries: 26-52 s in all
const CONTROL_LABEL = 'majlis';
const MOVE_CONNECT_MS = 10000;
const MOVE_OVERLAP_MS = 300; // both nodes hear us this long before the old one is let go
const RETIRE_MS = 5000; // the old node closes the old connection itself; else we do
const CAPTURE_ERRORS = new Set(['NotAllowedError', 'NotFoundError', 'NotReadableError', 'SecurityError', 'OverconstrainedError']);

/**
 * The speaker's WebRTC link. Events: state ({state: connecting|connected|reconnecting|
 * failed|closed, reason}). Reconnects itself (jittered backoff) when the connection drops.
 */
export class SpeakerLink extends EventTarget {
  constructor(spaceId, microphone, remoteAudio) {
    super();
    this.spaceId = spaceId;
    this.microphone = microphone;
    this.remoteAudio = remoteAudio;
    this.pc = null;
    this.attempt = 0;
    this.timer = null;
    this.closed = false;
    this.state = 'idle';
    this.moves = 0; // handovers followed (tests read it)
  }

  setState(state, reason = '') {
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, reason } }));
  }

  async connect() {
    this.closed = false;
    clearTimeout(this.timer);
    this.teardown();
    this.setState('connecting');
    try {
      await this.open();
    } catch (error) {
      this.failed(error);
    }
  }

  // A new peer connection for the microphone; it is this.pc from the start.
  async open() {
    const stream = await this.microphone.start();
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
    this.pc = pc;
    const transceiver = pc.addTransceiver(this.microphone.track, { direction: 'sendrecv', streams: [stream] });
    preferOpus(transceiver);
    pc.addEventListener('track', (event) => {
      if (pc !== this.pc) return;
      this.remoteAudio.srcObject = event.streams[0] ?? new MediaStream([event.track]);
      this.remoteAudio.play().catch(() => undefined);
    });
    pc.addEventListener('connectionstatechange', () => this.watch(pc));
    const control = pc.createDataChannel(CONTROL_LABEL);
    control.addEventListener('message', (event) => this.onControl(pc, control, event.data));
    await pc.setLocalDescription(await pc.createOffer());
    await waitForIce(pc, 2500);
    if (this.closed || this.pc !== pc) return;
    const answer = await speaking.offer(this.spaceId, pc.localDescription.sdp);
    if (this.closed || this.pc !== pc) return;
    await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
  }

  onControl(pc, control, data) {
    let kind = null;
    try {
      kind = JSON.parse(data)?.type;
    } catch {
      return; // not ours to read
    }
    if (kind === 'move' && pc === this.pc && !this.closed) this.move(pc, control);
  }

  // The media node hands the space over: make the new connection before breaking this one.
  async move(old, control) {
    this.moves += 1;
    try {
      await this.open();
      await connected(this.pc, MOVE_CONNECT_MS);
      await new Promise((resolve) => setTimeout(resolve, MOVE_OVERLAP_MS));
    } catch {
      // Stay on the old connection while it lasts; when its node closes it, reconnect.
      if (this.pc !== old) this.pc?.close();
      this.pc = old;
      if (['failed', 'closed'].includes(old.connectionState)) this.retry(t('studio.mic.moved'));
      return;
    }
    if (control.readyState === 'open') control.send(JSON.stringify({ type: 'moved' }));
    this.dispatchEvent(new CustomEvent('moved'));
    retire(old);
  }

  watch(pc) {
    if (pc !== this.pc || this.closed) return;
    const state = pc.connectionState;
    if (state === 'connected') {
      this.attempt = 0;
      this.setState('connected');
    } else if (state === 'failed') {
      this.retry(t('studio.mic.dropped'));
    } else if (state === 'disconnected') {
      // Often recovers by itself within a few seconds; give it that chance first.
      clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        if (pc === this.pc && pc.connectionState !== 'connected') this.retry(t('studio.mic.dropped'));
      }, 4000);
    }
  }

  failed(error) {
    if (this.closed) return;
    if (CAPTURE_ERRORS.has(error?.name)) {
      // getUserMedia refused or found no device: say which, and wait for the person.
      this.teardown();
      this.setState('failed', captureProblem(error).reason);
      return;
    }
    const reason = errorText(error);
    // A refusal (not on stage, space not live, no such endpoint) will not change by retrying.
    // A space that has just gone live may not be on a media node yet ('no_media'): retry that.
    const permanent =
      error instanceof ApiError &&
      error.status >= 400 &&
      error.status < 500 &&
      error.status !== 429 &&
      error.code !== 'no_media';
    if (permanent) {
      this.teardown();
      this.setState('failed', reason);
      return;
    }
    this.retry(reason);
  }

  retry(reason) {
    this.teardown();
    if (this.attempt >= MAX_ATTEMPTS) {
      this.setState('failed', reason);
      return;
    }
    // Quick first tries (a media node hands its spaces over in well under a second), then
    // spread out and jittered so a crowd does not come back in step.
    const wait = backoff(this.attempt, { base: 250, cap: 20000 });
    this.attempt += 1;
    this.setState('reconnecting', t('studio.mic.reconnecting', { reason, seconds: Math.ceil(wait / 1000) }));
    this.timer = setTimeout(() => this.connect(), wait);
  }

  teardown() {
    if (this.pc) {
      this.pc.close();
      this.pc = null;
    }
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.teardown();
    this.remoteAudio.srcObject = null;
    this.setState('closed');
  }
}

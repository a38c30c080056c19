// The microphone panel shared by the studio and a listener who has been brought on stage:
// permission flow, level meter, mute, connection state, and the mix-minus <audio>.
//
// data-state on the panel is the machine-readable state (tests read it):
//   off → asking → ready → connecting → connected | reconnecting | failed | denied

import { speaking } from './api.js';
import { Microphone, SpeakerLink, captureProblem, micPermission } from './mic.js';
import { t } from './i18n.js';
import { busy, flag, h } from './ui.js';

// What the panel says in each state (catalogue keys).
const TEXT = {
  off: 'studio.mic.off',
  asking: 'studio.mic.asking',
  ready: 'studio.mic.ready',
  connecting: 'studio.mic.connecting',
  connected: 'studio.mic.connected',
  muted: 'studio.mic.muted',
  mutedByModerator: 'studio.mic.muted_by_host',
};

export class MicPanel {
  constructor(container, { spaceId, userId }) {
    this.spaceId = spaceId;
    this.userId = userId;
    this.microphone = new Microphone({ raw: flag('raw') });
    this.remote = h('audio', { class: 'mix', autoplay: true, 'aria-hidden': 'true' });
    this.link = new SpeakerLink(spaceId, this.microphone, this.remote);
    this.muted = false;
    this.mutedBy = null;
    this.state = 'off';
    this.reason = '';
    this.wantLive = false;
    this.going = null;
    this.build(container);
    this.microphone.addEventListener('level', (event) => this.showLevel(event.detail));
    this.microphone.addEventListener('ended', (event) => this.set('failed', event.detail));
    this.link.addEventListener('state', (event) => {
      const { state, reason } = event.detail;
      if (state === 'closed') return;
      this.set(state, state === 'failed' ? t('studio.mic.failed', { reason }) : reason);
    });
  }

  build(container) {
    this.status = h('p', { class: 'mic-status', role: 'status', id: 'mic-status' }, t(TEXT.off));
    this.fill = h('div', { class: 'meter-fill' });
    this.meter = h(
      'div',
      {
        class: 'meter',
        role: 'meter',
        'aria-label': t('studio.mic.level'),
        'aria-valuemin': '0',
        'aria-valuemax': '100',
        'aria-valuenow': '0',
      },
      this.fill,
    );
    this.allowButton = h(
      'button',
      { type: 'button', class: 'primary', id: 'mic-allow', onclick: () => (this.wantLive ? this.goLive() : this.enable()) },
      t('studio.mic.allow'),
    );
    this.muteButton = h(
      'button',
      { type: 'button', id: 'mic-mute', 'aria-pressed': 'false', hidden: true, onclick: () => this.toggleMute() },
      t('studio.mic.mute'),
    );
    this.retryButton = h(
      'button',
      { type: 'button', id: 'mic-retry', hidden: true, onclick: () => this.retry() },
      t('studio.mic.retry'),
    );
    this.panel = h(
      'section',
      { class: 'card mic stack', id: 'mic', 'aria-labelledby': 'mic-heading', dataset: { state: 'off' } },
      h('h2', { id: 'mic-heading' }, t('studio.mic.heading')),
      this.status,
      this.meter,
      h('div', { class: 'row' }, this.allowButton, this.muteButton, this.retryButton),
      this.remote,
    );
    container.replaceChildren(this.panel);
  }

  set(state, reason = state === this.state ? this.reason : '') {
    this.state = state;
    this.reason = reason;
    this.panel.dataset.state = state;
    let text = reason || (TEXT[state] ? t(TEXT[state]) : '');
    if (state === 'connected' && this.muted) text = t(this.mutedBy === 'moderator' ? TEXT.mutedByModerator : TEXT.muted);
    this.status.textContent = text;
    this.allowButton.hidden = !['off', 'denied'].includes(state);
    this.retryButton.hidden = !['failed', 'denied'].includes(state);
    this.muteButton.hidden = !['ready', 'connecting', 'connected', 'reconnecting'].includes(state);
  }

  showLevel({ fraction }) {
    this.fill.style.clipPath = `inset(0 ${(100 - fraction * 100).toFixed(1)}% 0 0)`;
    const now = Math.round(fraction * 100);
    if (Math.abs(now - Number(this.meter.getAttribute('aria-valuenow'))) >= 10) {
      this.meter.setAttribute('aria-valuenow', String(now));
    }
  }

  /**
   * Get ready without surprising anyone: when the browser already allows the microphone,
   * open it (and connect if live); otherwise wait for a press on “Allow microphone”.
   */
  async prepare(live) {
    this.wantLive = live;
    const permission = await micPermission();
    if (permission === 'granted') {
      await (live ? this.goLive() : this.enable());
    } else if (permission === 'denied') {
      this.set('denied', captureProblem({ name: 'NotAllowedError' }).reason);
    }
  }

  async enable() {
    if (this.microphone.open) return true;
    this.set('asking');
    try {
      await this.microphone.start();
      this.set('ready');
      return true;
    } catch (error) {
      const problem = captureProblem(error);
      this.set(problem.state, problem.reason);
      return false;
    }
  }

  /** Capture (asking if needed) and connect to the space's media node. */
  goLive() {
    this.going ??= (async () => {
      if (await this.enable()) await this.link.connect();
    })().finally(() => {
      this.going = null;
    });
    return this.going;
  }

  async retry() {
    if (!this.microphone.open) {
      if (!(await this.enable())) return;
    }
    if (this.wantLive) await this.link.connect();
  }

  /** The page says whether this person should be sending audio now. */
  async setLive(live) {
    this.wantLive = live;
    if (live && !['connecting', 'connected', 'reconnecting'].includes(this.link.state)) await this.goLive();
    if (!live) this.link.close();
  }

  async toggleMute() {
    const muting = !this.muted;
    await busy(this.muteButton, async () => {
      // Muting works locally at once; the server is told so the stage shows it.
      if (muting) this.applyMute(true, 'self');
      try {
        await (muting ? speaking.mute : speaking.unmute)(this.spaceId, this.userId);
      } catch (error) {
        if (!muting) throw error;
        if (error.status !== 409) throw error; // not on stage yet: the local mute is enough
      }
      if (!muting) this.applyMute(false);
    });
  }

  applyMute(muted, by = null) {
    this.muted = muted;
    this.mutedBy = muted ? by : null;
    this.microphone.setMuted(muted);
    this.muteButton.textContent = muted ? t('studio.mic.unmute') : t('studio.mic.mute');
    this.muteButton.setAttribute('aria-pressed', String(muted));
    this.set(this.state);
  }

  stop() {
    this.wantLive = false;
    this.link.close();
    this.microphone.stop();
    this.fill.style.clipPath = 'inset(0 100% 0 0)';
    this.set('off');
  }
}

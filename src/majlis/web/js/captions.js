// Live captions on the listener page, read from the space's WebVTT subtitles rendition
// (captions.m3u8 beside index.m3u8, with the same playback token in the path) and shown in
// step with the audio: a cue is on screen while the player's position is inside it.
//
// The player's position is the audio's media time (seconds since the space started: what
// the fMP4 decode times count, and what the cues count too) for the Media Source players
// (edge stream, segment streams); for hls.js and native HLS it is read from the program
// date time (Player.mediaTime). Cues whose time has passed before they arrived are still
// shown for their last moment, so nothing said is skipped.
//
// Lines are named by the speaker's display name (the state document's stage) and set
// right to left when they are written in Arabic script. The toggle hides them and stops
// fetching; the choice is kept in localStorage. The rendition is polled once a second
// while captions are on and the player plays; nothing is fetched otherwise.

import { t } from './i18n.js';
import { withToken } from './player.js';

const POLL_MS = 1000;
const KEEP_S = 30; // cues further back than this are forgotten
const SHOWN = 3; // lines on screen at most
const SEGMENT = /^c[0-9]+\.vtt$/gm;
const RTL = /[\u0590-\u08FF\uFB1D-\uFDFF\uFE70-\uFEFF]/;
const ARABIC = /[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF]/;
const STORE_KEY = 'majlis.captions';
const LATE_S = 2; // a cue that arrives after its end is still shown this long

function seconds(stamp) {
  const [h, m, s] = stamp.trim().split(':');
  return Number(h) * 3600 + Number(m) * 60 + Number(s);
}

function unescape(text) {
  return text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/** The cues of one WebVTT segment as Majlis writes them: {start, end, speaker, text}. */
export function parseVtt(text) {
  const cues = [];
  for (const block of text.split(/\n\n+/).slice(1)) {
    const rows = block.split('\n');
    const timing = rows.findIndex((row) => row.includes(' --> '));
    if (timing < 0) continue;
    const [from, to] = rows[timing].split(' --> ');
    let body = rows.slice(timing + 1).filter(Boolean).join(' ').trim();
    let speaker = '';
    const voice = /^<v ([^>]*)>/.exec(body);
    if (voice) {
      speaker = unescape(voice[1]);
      body = body.slice(voice[0].length);
    }
    cues.push({ start: seconds(from), end: seconds(to.split(' ')[0]), speaker, text: unescape(body) });
  }
  return cues;
}

/** dir and lang of a line: right to left for Arabic (and other RTL scripts). */
export function direction(text) {
  return { dir: RTL.test(text) ? 'rtl' : 'ltr', lang: ARABIC.test(text) ? 'ar' : '' };
}

export class CaptionView {
  constructor({ player, box, toggle, note }) {
    this.player = player;
    this.box = box;
    this.toggle = toggle;
    this.note = note;
    this.base = null; // the playback URL's directory, with a token in it
    this.cues = [];
    this.seen = new Set();
    this.names = new Map();
    this.state = 'unavailable'; // as the state document says
    this.reason = null; // why unavailable: 'no_model' | 'language'
    this.startedAt = null; // the space's start (Unix seconds): its media time's zero
    this.wanted = localStorage.getItem(STORE_KEY) !== 'off';
    this.timer = null;
    this.fetching = false;
    toggle.addEventListener('click', () => this.setWanted(!this.wanted));
    player.audio.addEventListener('timeupdate', () => this.render());
    this.renderToggle();
  }

  /** Listening from `playbackUrl` (…/index.m3u8): captions come from beside it. */
  start(playbackUrl) {
    this.base = playbackUrl.slice(0, playbackUrl.lastIndexOf('/'));
    this.cues = [];
    this.seen.clear();
    this.schedule(0);
  }

  stop() {
    this.base = null;
    clearTimeout(this.timer);
    this.cues = [];
    this.box.replaceChildren();
  }

  /** The state document: whether the space has captions, and who is on stage. */
  update(state) {
    this.state = state.captions ?? 'unavailable';
    this.reason = state.captions_reason ?? null;
    this.startedAt = state.space?.started_at ?? null;
    for (const speaker of state.speakers ?? []) {
      this.names.set(speaker.user_id, speaker.display_name || speaker.username);
    }
    this.renderToggle();
    if (this.active()) this.schedule(0);
  }

  setWanted(wanted) {
    this.wanted = wanted;
    localStorage.setItem(STORE_KEY, wanted ? 'on' : 'off');
    this.renderToggle();
    if (this.active()) this.schedule(0);
    else this.box.replaceChildren();
  }

  active() {
    return Boolean(this.base) && this.wanted && this.state === 'on';
  }

  renderToggle() {
    const available = this.state !== 'unavailable';
    this.toggle.hidden = !available;
    this.toggle.setAttribute('aria-pressed', String(this.wanted));
    this.toggle.textContent = this.wanted ? t('listen.captions.on') : t('listen.captions.off');
    this.box.hidden = !(this.wanted && this.state === 'on');
    const note = captionsNote(this.state, this.reason);
    this.note.hidden = !note;
    this.note.textContent = note;
  }

  schedule(delay) {
    clearTimeout(this.timer);
    if (this.active()) this.timer = setTimeout(() => this.fetch(), delay);
  }

  async fetch() {
    if (this.fetching || !this.active()) return;
    this.fetching = true;
    try {
      const token = this.player.token;
      const answer = await fetch(withToken(`${this.base}/captions.m3u8`, token), { cache: 'no-store' });
      if (answer.ok) {
        const names = (await answer.text()).match(SEGMENT) ?? [];
        for (const name of names.filter((n) => !this.seen.has(n))) {
          const segment = await fetch(withToken(`${this.base}/${name}`, token));
          if (!segment.ok) break; // listed but refused (a token renewed meanwhile): next time
          this.seen.add(name);
          const now = this.player.mediaTime(this.startedAt) ?? 0;
          for (const cue of parseVtt(await segment.text())) {
            this.cues.push({ ...cue, until: Math.max(cue.end, now + LATE_S) });
          }
        }
        this.forget();
        this.render();
      }
    } catch {
      // A missed poll is caught up by the next one: the playlist lists the last 30 segments.
    } finally {
      this.fetching = false;
      this.schedule(POLL_MS);
    }
  }

  forget() {
    const now = this.player.mediaTime(this.startedAt);
    if (now !== null) this.cues = this.cues.filter((cue) => cue.until > now - KEEP_S);
    if (this.seen.size > 200) this.seen = new Set([...this.seen].slice(-100));
  }

  /** The lines to show now: the cues the position is inside (without a position, the
   * newest), those of one speaker in a row joined, as the words of a sentence arrive a
   * few at a time. */
  current() {
    const now = this.player.mediaTime(this.startedAt);
    const showing = now === null ? this.cues.slice(-SHOWN) : this.cues.filter((cue) => cue.start <= now && now < cue.until);
    const lines = [];
    for (const cue of showing) {
      const last = lines.at(-1);
      if (last && last.speaker === cue.speaker) last.text = `${last.text} ${cue.text}`;
      else lines.push({ ...cue });
    }
    return lines.slice(-SHOWN);
  }

  render() {
    if (!this.active()) return;
    const lines = this.current().map((cue) => {
      const line = document.createElement('p');
      const { dir, lang } = direction(cue.text);
      line.dir = dir;
      if (lang) line.lang = lang;
      line.className = 'caption';
      const who = this.names.get(cue.speaker);
      if (who) {
        const name = document.createElement('span');
        name.className = 'who';
        name.dir = 'auto';
        name.textContent = `${who}: `;
        line.append(name);
      }
      line.append(cue.text);
      line.dataset.start = String(cue.start);
      return line;
    });
    const before = [...this.box.children].map((p) => p.textContent).join('\n');
    if (lines.map((p) => p.textContent).join('\n') !== before) this.box.replaceChildren(...lines);
  }
}

/** What a listener is told beside the player: nothing while captions are on, or when the
 * server has none at all (no toggle either); why there are none otherwise. */
export function captionsNote(state, reason) {
  if (state === 'off') return t('listen.captions.host_off');
  if (state === 'unavailable' && reason === 'language') return t('listen.captions.no_language');
  return '';
}

/** What people on stage are told about captions (studio, speaker's view). */
export function captionsNotice(state, reason) {
  if (state === 'on') return t('listen.captions.notice_on');
  if (state === 'off') return t('listen.captions.notice_off');
  if (state === 'unavailable' && reason === 'language') return t('listen.captions.no_language');
  return '';
}

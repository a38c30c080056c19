// The replay of an ended space: the whole recording as one file (seekable everywhere), or
// its HLS playlist when the file is not there; seek, ±15 s, download, length, peak listeners.
// Its audience over time (listeners and reactions), drawn under the player.
// Its transcript, when the server makes them: each line plays the recording from where it
// starts, and the line being heard is marked as playback moves (aria-current).

import { api, spaces } from '../api.js';
import { loadAudience } from '../audience.js';
import { errorText, t } from '../i18n.js';
import { Player } from '../player.js';
import { attachShare } from '../share.js';
import { renderSpace } from '../spacehead.js';
import {
  $,
  formatClock,
  formatCount,
  formatWhen,
  h,
  renderAccount,
  setText,
  show,
  showError,
  showInfo,
  spaceIdFromPath,
  spaceUrl,
} from '../ui.js';

const spaceId = spaceIdFromPath();
const audio = $('#player');
const seek = $('#seek');
const playButton = $('#play-button');
let player = null;
let dragging = false;
// The transcript's lines as shown: [{start, end, button}], in order of start.
let lines = [];
let currentLine = null;

const TRANSCRIPT_POLL_MS = 4000; // while it is being made (the answer is cached 5 s anyway)
// A line counts as being heard this early: a seek lands on the frame before its start.
const LINE_LEAD_S = 0.25;

// Where the replay plays: GET /spaces/{id}/replay says (a private space's URLs carry a
// token for its guests); these are the open paths until it has answered.
const urls = {
  playlist: `/hls/${encodeURIComponent(spaceId)}/index.m3u8`,
  audio: `/hls/${encodeURIComponent(spaceId)}/replay.m4a`,
};
const hlsUrl = () => urls.playlist;
const fileUrl = () => urls.audio;

function setControls(enabled) {
  for (const control of [seek, playButton, $('#back-button'), $('#forward-button')]) control.disabled = !enabled;
}

function showDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds <= 0) return;
  seek.max = String(Math.floor(seconds));
  setText('#total-time', formatClock(seconds));
  setText('#duration', formatClock(seconds));
  setControls(true);
  showTime();
}

function showTime() {
  const now = audio.currentTime;
  if (!dragging) seek.value = String(Math.floor(now));
  setText('#current-time', formatClock(now));
  seek.setAttribute('aria-valuetext', t('pages.replay.seek_value', { at: formatClock(now), total: formatClock(Number(seek.max)) }));
}

function bindControls() {
  audio.addEventListener('durationchange', () => showDuration(audio.duration));
  audio.addEventListener('loadedmetadata', () => showDuration(audio.duration));
  audio.addEventListener('timeupdate', showTime);
  audio.addEventListener('timeupdate', markCurrentLine);
  audio.addEventListener('seeked', markCurrentLine);
  audio.addEventListener('play', () => {
    playButton.textContent = t('pages.replay.pause');
    playButton.setAttribute('aria-pressed', 'true');
    setText('#player-detail', '');
  });
  audio.addEventListener('pause', () => {
    playButton.textContent = t('pages.replay.play');
    playButton.setAttribute('aria-pressed', 'false');
  });
  playButton.addEventListener('click', () => {
    if (audio.paused) audio.play().catch((error) => setText('#player-detail', error.message));
    else audio.pause();
  });
  seek.addEventListener('input', () => {
    dragging = true;
    setText('#current-time', formatClock(Number(seek.value)));
  });
  seek.addEventListener('change', () => {
    dragging = false;
    audio.currentTime = Number(seek.value);
  });
  const jump = (delta) => {
    audio.currentTime = Math.max(0, Math.min(audio.duration || 0, audio.currentTime + delta));
  };
  $('#back-button').addEventListener('click', () => jump(-15));
  $('#forward-button').addEventListener('click', () => jump(15));
}

/** The single file first; the HLS playlist if the file is missing. */
function load() {
  const fallback = () => {
    audio.removeEventListener('error', fallback);
    setText('#player-detail', t('pages.replay.loading_playlist'));
    player = new Player(audio);
    player.on('state', ({ state, reason }) => {
      if (state === 'reconnecting' || state === 'failed') {
        setText('#player-detail', t('pages.replay.not_yet'));
        document.body.dataset.player = 'unavailable';
        if (state === 'failed') setText('#player-detail', reason);
      } else if (state === 'playing') {
        document.body.dataset.player = 'playing';
      }
    });
    player.play(hlsUrl(), { live: false, autoplay: false });
  };
  audio.addEventListener('error', fallback);
  audio.src = fileUrl();
  audio.load();
}

// Transcript ----------------------------------------------------------------------------

function playFrom(seconds) {
  audio.currentTime = seconds;
  if (audio.paused) audio.play().catch((error) => setText('#player-detail', error.message));
}

/** Mark the line being heard (none between lines) and keep it in view within the list. */
function markCurrentLine() {
  const now = audio.currentTime;
  let found = null;
  for (const line of lines) {
    if (line.start > now + LINE_LEAD_S) break;
    if (now < line.end) found = line;
  }
  if (found === currentLine) return;
  currentLine?.button.removeAttribute('aria-current');
  currentLine = found;
  if (!found) return;
  found.button.setAttribute('aria-current', 'true');
  const list = $('#transcript-lines');
  const item = found.button.parentElement;
  if (item.offsetTop < list.scrollTop || item.offsetTop + item.offsetHeight > list.scrollTop + list.clientHeight) {
    list.scrollTop = Math.max(0, item.offsetTop - list.clientHeight / 3);
  }
}

function renderLines(received) {
  lines = received.map((line) => ({
    start: line.start,
    end: line.end,
    button: h(
      'button',
      { type: 'button', class: 'line', dir: 'auto', dataset: { start: String(line.start) }, onclick: () => playFrom(line.start) },
      h('span', { class: 'stamp', dir: 'ltr' }, formatClock(line.start)),
      h('span', { class: 'said' }, line.text), // no dir of its own: the line's dir="auto" reads it
    ),
  }));
  currentLine = null;
  $('#transcript-lines').replaceChildren(...lines.map((line) => h('li', {}, line.button)));
  markCurrentLine();
}

/** The transcript's state as the section shows it (data-state: pending, running, done,
 * failed, error; hidden for off and none). */
function showTranscript(state, status) {
  const card = $('#transcript-card');
  card.dataset.state = state;
  setText('#transcript-status', status);
  show('#transcript-status', Boolean(status));
  show(card, state !== 'off' && state !== 'none');
}

async function loadTranscript() {
  let answer;
  try {
    answer = await api.get(`/spaces/${encodeURIComponent(spaceId)}/transcript`, { retries: 1 });
  } catch (error) {
    if (error.code === 'captions_off') return showTranscript('off', '');
    if (error.status === 404) return showTranscript('none', '');
    showTranscript('error', t('pages.replay.transcript_error', { reason: errorText(error) }));
    setTimeout(pollTranscript, TRANSCRIPT_POLL_MS * 2);
    return undefined;
  }
  if (answer.state === 'done') {
    renderLines(answer.lines);
    return showTranscript('done', answer.lines.length ? '' : t('pages.replay.transcript_empty'));
  }
  if (answer.state === 'failed') {
    return showTranscript('failed', t('pages.replay.transcript_failed', { reason: answer.error || t('pages.replay.no_reason') }));
  }
  showTranscript(answer.state, t('pages.replay.transcribing'));
  setTimeout(pollTranscript, TRANSCRIPT_POLL_MS);
  return undefined;
}

const pollTranscript = () => loadTranscript().catch(showError);

// Audience ------------------------------------------------------------------------------

async function showAudience(space) {
  const audience = await loadAudience(spaceId, space.started_at, { retries: 1, onSeek: playFrom });
  if (!audience) return;
  setText('#peak-count', formatCount(audience.peak));
  if (!audience.chart) return;
  $('#audience-chart').replaceChildren(audience.chart);
  const { joins, leaves } = audience.flow;
  setText('#audience-flow', t('pages.replay.audience_flow', { joins, leaves }));
  show('#audience-card', true);
}

async function main() {
  if (!spaceId) return;
  await renderAccount();
  let space;
  try {
    space = await spaces.get(spaceId);
  } catch (error) {
    setText('#space-title', error.status === 404 ? t('pages.replay.no_such_space') : t('pages.replay.cannot_load'));
    showError(error);
    return;
  }
  renderSpace(space);
  attachShare({ url: location.href, title: space.title });
  setText(
    '#space-state',
    space.state === 'ended'
      ? t('pages.replay.state.ended')
      : space.state === 'live'
        ? t('pages.replay.state.live')
        : t('pages.replay.state.scheduled'),
  );
  setText('#peak-count', formatCount(space.peak_listeners));
  setText('#recorded-at', space.started_at ? formatWhen(space.started_at) : '–');
  if (space.started_at && space.ended_at) showDuration(space.ended_at - space.started_at);
  setControls(false);
  if (space.state === 'ended') {
    try {
      const where = await spaces.replay(spaceId);
      urls.playlist = where.playlist_url;
      urls.audio = where.audio_url;
    } catch (error) {
      const why = error.code === 'not_recorded' ? t('pages.replay.not_recorded') : errorText(error);
      setText('#player-detail', why);
      document.body.dataset.player = 'unavailable';
      $('#download-link').hidden = true;
      if (error.code !== 'not_recorded') showError(error);
      return;
    }
  }
  const download = $('#download-link');
  download.href = fileUrl();
  download.setAttribute('download', `${space.title.replace(/[\\/:*?"<>|]+/g, ' ').trim() || 'space'}.m4a`);
  if (space.state !== 'ended') {
    showInfo(t('pages.replay.not_ended'));
    download.hidden = true;
    const listen = document.createElement('a');
    listen.className = 'button primary';
    listen.href = spaceUrl(spaceId);
    listen.textContent = space.state === 'live' ? t('pages.replay.listen_live') : t('pages.replay.see_space');
    $('#player-card').append(listen);
    return;
  }
  bindControls();
  load();
  pollTranscript();
  showAudience(space).catch(showError);
}

main().catch(showError);

// The listener view: one click to listen (through the waiting room when it queues), the
// stage, counts and reactions from the polled state document; asking to speak, and — when a
// host approves — the microphone, without reloading the page.

import { listenerToken, listening, me, notices, sleep, spaces, speaking } from '../api.js';
import { CaptionView, captionsNotice } from '../captions.js';
import { EventStream } from '../events.js';
import { errorText, t } from '../i18n.js';
import { MicPanel } from '../micpanel.js';
import { Player } from '../player.js';
import { ReactionBar, sender } from '../reactions.js';
import { attachReport } from '../report.js';
import { attachShare } from '../share.js';
import { renderCounts, renderSpace, showConnection } from '../spacehead.js';
import { StageGrid } from '../stage.js';
import { StatePoller } from '../statepoll.js';
import {
  $,
  busy,
  clearAlert,
  formatWait,
  formatWhen,
  h,
  noticeText,
  renderAccount,
  show,
  showError,
  showInfo,
  setText,
  spaceIdFromPath,
  spaceUrl,
} from '../ui.js';

const HEARTBEAT_MS = 15000;

// Often enough that a playback token (playback_ttl on the server) is renewed well before it
// expires, however short the operator made it.
function heartbeatEvery(answer) {
  const left = answer.expires_at * 1000 - Date.now();
  return Math.max(1000, Math.min(HEARTBEAT_MS, left / 3));
}
const ON_STAGE = new Set(['host', 'cohost', 'speaker']);
// The host talks from the studio; here, co-hosts and speakers get their microphone.
const micHere = () => role === 'cohost' || role === 'speaker';

const spaceId = spaceIdFromPath();
const poller = new StatePoller(spaceId);
const player = new Player($('#player'));
const captions = new CaptionView({
  player,
  box: $('#captions'),
  toggle: $('#captions-button'),
  note: $('#captions-note'),
});
let user = null;
let space = null;
let role = 'listener';
let asking = false;
let invited = false;
let removed = false; // told so by the events socket: what it said stays on screen
let listeningWanted = false;
let joinRun = 0;
let playback = null;
let heartbeatTimer = null;
let events = null;
let mic = null;
let stage = null;
let reactions = null;
let pollTrouble = false;

// Listening ------------------------------------------------------------------------------

async function listen() {
  const run = ++joinRun;
  listeningWanted = true;
  show('#listen-start', false);
  show('#player-panel', false);
  showConnection('connecting', t('listen.conn.joining'));
  clearAlert();
  try {
    const token = await listenerToken();
    let ticket = null;
    for (;;) {
      const answer = await listening.join(spaceId, ticket, token);
      if (run !== joinRun) return;
      if (answer.status !== 'queued') {
        admitted(answer, token);
        return;
      }
      ticket = answer.ticket;
      showWaiting(answer);
      await sleep(answer.retry_after_ms);
      if (run !== joinRun) return;
    }
  } catch (error) {
    if (run !== joinRun) return;
    listeningWanted = false;
    show('#waiting-room', false);
    show('#listen-start', space.state === 'live');
    showConnection('failed', t('listen.conn.not_listening'));
    showError(error);
    if (error.status === 409) refreshSpace();
  }
}

function showWaiting(answer) {
  const room = $('#waiting-room');
  room.hidden = false;
  room.dataset.position = String(answer.position);
  $('#wait-position').textContent = String(answer.position);
  $('#wait-eta').textContent = formatWait(answer.estimated_wait_ms);
  showConnection('connecting', t('listen.conn.waiting'));
}

function admitted(answer, token) {
  show('#waiting-room', false);
  show('#player-panel', true);
  playback = { token: answer.playback_token, url: answer.playback_url, member: token };
  poller.url = answer.state_url; // from the edge when there is one
  player.play(answer.playback_url, { token: answer.playback_token, live: true, stream: answer.stream_url });
  captions.start(answer.playback_url);
  $('#pause-button').focus();
  clearInterval(heartbeatTimer);
  heartbeatTimer = setInterval(heartbeat, heartbeatEvery(answer));
}

async function heartbeat() {
  if (!playback) return;
  try {
    const answer = await listening.heartbeat(spaceId, playback.token, playback.member);
    playback.token = answer.playback_token;
    player.setToken(answer.playback_token);
    if (answer.invited && !invited) onInvited();
  } catch (error) {
    if (error.status === 409) refreshSpace();
    else if (error.status === 403) {
      stopListening();
      showError(await statementOr(error));
    }
  }
}

// A listener holds no events socket, so the statement of reasons for their ban is read
// when the heartbeat is refused.
async function statementOr(error) {
  if (!user || error.code !== 'banned') return error;
  const mine = await notices.mine().catch(() => null);
  const notice = mine?.notices.find((n) => n.space_id === spaceId);
  return notice ? noticeText(notice) : error;
}

function stopListening({ leave = true } = {}) {
  joinRun += 1;
  listeningWanted = false;
  clearInterval(heartbeatTimer);
  heartbeatTimer = null;
  player.stop();
  captions.stop();
  if (playback && leave) listening.leave(spaceId, playback.member).catch(() => undefined);
  playback = null;
  show('#player-panel', false);
  show('#waiting-room', false);
  show('#listen-start', space?.state === 'live' && !micHere());
  showConnection('idle', '');
}

const PLAYER_TEXT = {
  loading: ['connecting', t('listen.conn.loading')],
  playing: ['live', t('listen.conn.playing')],
  buffering: ['buffering', t('listen.conn.buffering')],
  paused: ['idle', t('listen.conn.paused')],
  ended: ['idle', t('listen.conn.ended')],
};

player.on('state', ({ state, reason }) => {
  $('#player-detail').textContent = reason || '';
  const pause = $('#pause-button');
  pause.textContent = state === 'paused' ? t('listen.resume') : t('listen.pause');
  pause.setAttribute('aria-pressed', String(state === 'paused'));
  if (pollTrouble) return;
  if (state === 'reconnecting') showConnection('reconnecting', t('listen.conn.reconnecting'));
  else if (state === 'failed') showConnection('failed', t('listen.conn.failed'));
  else if (PLAYER_TEXT[state]) showConnection(...PLAYER_TEXT[state]);
});

// The state document -----------------------------------------------------------------------

let lastSpeakers = [];

function onState(state) {
  lastSpeakers = state.speakers;
  renderCounts(state);
  stage.render(state.speakers);
  reactions.update(state.reactions);
  captions.update(state);
  // Speakers are told whether what they say is captioned.
  const notice = micHere() ? captionsNotice(state.captions, state.captions_reason) : '';
  $('#stage-captions').textContent = notice;
  show('#stage-captions', Boolean(notice));
  const before = space.state;
  space = state.space;
  renderSpace(space);
  if (before !== space.state) applySpaceState();
}

poller.on('connection', ({ state, inMs }) => {
  pollTrouble = state !== 'live';
  if (pollTrouble) {
    showConnection(state, t('listen.conn.lost', { seconds: Math.ceil(inMs / 1000) }));
  } else if (player.state !== 'idle') {
    showConnection(...(PLAYER_TEXT[player.state] ?? ['live', t('listen.conn.connected')]));
  } else {
    showConnection('idle', '');
  }
});

async function refreshSpace() {
  try {
    space = await spaces.get(spaceId);
    renderSpace(space);
    applySpaceState();
  } catch (error) {
    showError(error);
  }
}

function applySpaceState() {
  const state = space.state;
  show('#listen-panel', state === 'live' && !micHere());
  show('#reactions-panel', state === 'live');
  show('#scheduled-panel', state === 'scheduled');
  show('#ended-panel', state === 'ended');
  show('#stage-panel', state !== 'ended');
  if (state === 'scheduled') {
    const time = $('#scheduled-time');
    time.textContent = formatWhen(space.scheduled_for);
    time.dateTime = new Date(space.scheduled_for * 1000).toISOString();
    poller.interval = 5000;
  } else {
    poller.interval = state === 'ended' ? 30000 : 1000;
  }
  if (state === 'live') {
    show('#listen-start', !listeningWanted && !micHere());
    if (micHere()) enterStage();
  }
  if (state === 'ended') ended();
  renderSpeak();
}

function ended() {
  stopListening({ leave: false });
  leaveStage(null, { rejoin: false });
  events?.stop();
  events = null;
  asking = false;
  invited = false;
  show('#listen-panel', false);
  show('#reactions-panel', false);
  show('#ended-panel', true);
  showConnection('idle', t('listen.conn.space_ended'));
}

// Speaking ---------------------------------------------------------------------------------

function renderSpeak() {
  const panel = $('#speak-panel');
  const status = $('#speak-status');
  const actions = $('#speak-actions');
  if (space.state !== 'live') {
    panel.hidden = true;
    return;
  }
  panel.hidden = false;
  panel.dataset.role = role;
  panel.dataset.asking = String(asking);
  if (!user) {
    status.textContent = t('listen.speak.log_in');
    actions.replaceChildren(
      h('a', { class: 'button', href: `/login?next=${encodeURIComponent(location.pathname)}` }, t('listen.speak.log_in_button')),
    );
    return;
  }
  if (ON_STAGE.has(role)) {
    status.textContent = t(role === 'host' ? 'listen.speak.host' : role === 'cohost' ? 'listen.speak.cohost' : 'listen.speak.speaker');
    actions.replaceChildren(
      role === 'host'
        ? h('a', { class: 'button', href: spaceUrl(spaceId, 'studio') }, t('listen.studio_link'))
        : h('button', { type: 'button', id: 'step-down', onclick: stepDown }, t('listen.speak.step_down')),
    );
    return;
  }
  if (invited) {
    status.textContent = t('listen.speak.invited');
    actions.replaceChildren(
      h('button', { type: 'button', class: 'primary', id: 'accept-invite', onclick: acceptInvite }, t('listen.speak.accept')),
      h('button', { type: 'button', id: 'decline-invite', onclick: declineInvite }, t('listen.speak.decline')),
    );
    return;
  }
  if (asking) {
    status.textContent = t('listen.speak.asked');
    actions.replaceChildren(h('button', { type: 'button', id: 'withdraw', onclick: withdraw }, t('listen.speak.withdraw')));
    return;
  }
  status.textContent = t('listen.speak.prompt');
  actions.replaceChildren(
    h('button', { type: 'button', class: 'primary', id: 'ask-to-speak', onclick: ask }, t('listen.speak.ask')),
  );
}

async function ask(event) {
  await busy(event.currentTarget, async () => {
    try {
      await speaking.ask(spaceId);
    } catch (error) {
      if (error.code !== 'already_requested') throw error;
    }
    asking = true;
    openEvents();
    renderSpeak();
    $('#withdraw')?.focus();
  });
}

async function withdraw(event) {
  await busy(event.currentTarget, async () => {
    try {
      await speaking.withdraw(spaceId);
    } catch (error) {
      if (error.status !== 404) throw error;
    }
    asking = false;
    closeEventsUnlessActing();
    renderSpeak();
  });
}

async function acceptInvite(event) {
  await busy(event.currentTarget, async () => {
    const participant = await speaking.acceptInvite(spaceId);
    invited = false;
    setRole(participant.role);
  });
}

async function declineInvite(event) {
  await busy(event.currentTarget, async () => {
    await speaking.declineInvite(spaceId).catch((error) => {
      if (error.status !== 404) throw error;
    });
    invited = false;
    closeEventsUnlessActing();
    renderSpeak();
  });
}

async function stepDown(event) {
  await busy(event.currentTarget, async () => {
    await speaking.stepDown(spaceId);
    setRole('listener', t('listen.speak.stepped_down'));
  });
}

function onInvited() {
  invited = true;
  openEvents();
  renderSpeak();
  showInfo(t('listen.speak.invited'));
}

function setRole(next, message = null) {
  role = next;
  if (ON_STAGE.has(next)) {
    asking = false;
    invited = false;
  }
  if (micHere()) enterStage();
  else leaveStage(message);
  renderSpeak();
  $('#studio-link-row').hidden = !(next === 'host' || next === 'cohost');
}

function enterStage() {
  if (mic || space.state !== 'live') return;
  // On stage you hear the others through your own WebRTC link, not the delayed broadcast.
  stopListening();
  show('#listen-panel', false);
  mic = new MicPanel($('#mic-slot'), { spaceId, userId: user.id });
  mic.setLive(true);
  openEvents();
  renderSpeak();
}

function leaveStage(message, { rejoin = true } = {}) {
  if (!mic) return;
  mic.stop();
  mic = null;
  $('#mic-slot').replaceChildren();
  show('#listen-panel', space.state === 'live');
  closeEventsUnlessActing();
  if (message) showInfo(message);
  // Back in the audience: carry on listening to the broadcast without another click.
  if (rejoin && space.state === 'live') listen();
}

// The events socket (only while acting: on stage, asking, invited) ------------------------

function openEvents() {
  if (events || !user) return;
  events = new EventStream(spaceId);
  events
    .on('hello', (hello) => {
      const mine = hello.participants.find((p) => p.user_id === user.id);
      setRole(mine ? mine.role : 'listener');
      if (mine && mic) mic.applyMute(mine.muted, mine.muted ? 'moderator' : null);
    })
    .on('role_changed', ({ data }) => {
      if (data.user_id !== user.id) return;
      const why = data.reason === 'demoted' ? t('listen.speak.demoted') : null;
      setRole(data.role, why);
      poller.refresh();
    })
    .on('speak_request_declined', ({ data }) => {
      if (data.user_id !== user.id) return;
      asking = false;
      showInfo(t('listen.speak.declined'));
      closeEventsUnlessActing();
      renderSpeak();
    })
    .on('invited', ({ data }) => {
      if (data.user_id === user.id) onInvited();
    })
    .on('muted', ({ data }) => {
      if (data.user_id === user.id) mic?.applyMute(true, 'moderator');
      poller.refresh();
    })
    .on('unmuted', ({ data }) => {
      if (data.user_id === user.id) mic?.applyMute(false);
      poller.refresh();
    })
    // A statement of reasons comes to the removed person alone, just before the space's
    // neutral 'removed' (which closes their socket).
    .on('notice', ({ data }) => removedHere(noticeText(data.notice)))
    .on('removed', ({ data }) => {
      if (data.user_id !== user.id) return poller.refresh();
      if (!removed) removedHere(t('listen.removed'));
    })
    .on('host_changed', ({ data }) => {
      showInfo(data.user_id === user.id ? t('listen.host_changed.you') : t('listen.host_changed.other', { username: data.username }));
      poller.refresh();
    })
    .on('space_ended', () => refreshSpace())
    .on('state', ({ state }) => {
      $('#speak-panel').dataset.events = state;
    })
    .start();
}

function removedHere(message) {
  removed = true;
  role = 'listener';
  asking = false;
  invited = false;
  leaveStage(null, { rejoin: false });
  stopListening({ leave: false });
  show('#listen-panel', false);
  show('#speak-panel', false); // its "Step down" or "Ask" would only be refused now
  showError(message);
}

function closeEventsUnlessActing() {
  if (ON_STAGE.has(role) || asking || invited) return;
  events?.stop();
  events = null;
}

// Start ------------------------------------------------------------------------------------

async function main() {
  if (!spaceId) return;
  user = await renderAccount();
  try {
    space = await spaces.get(spaceId);
  } catch (error) {
    $('#space-title').textContent = error.status === 404 ? t('listen.no_such_space') : t('listen.cannot_load');
    showError(error);
    return;
  }
  renderSpace(space);
  attachShare({ url: new URL(spaceUrl(spaceId), location.href).href, title: space.title });
  attachReport({ spaceId, speakers: () => lastSpeakers });
  const notes = [];
  if (space.visibility === 'private') notes.push(t('listen.note.private'));
  else notes.push(t('listen.note.open'));
  if (!space.recording) notes.push(t('listen.note.not_recorded'));
  setText('#listen-note', notes.join(' '));
  $('#replay-link').href = spaceUrl(spaceId, 'replay');
  $('#studio-link').href = spaceUrl(spaceId, 'studio');
  $('#ics-link').href = spaces.calendarUrl(spaceId);
  stage = new StageGrid($('#speakers'), { meId: user?.id });
  reactions = new ReactionBar($('#reactions'), {
    send: sender(spaceId, listenerToken),
    onError: (error) => {
      $('#reaction-note').textContent = errorText(error);
      setTimeout(() => {
        $('#reaction-note').textContent = '';
      }, 3000);
    },
  });
  $('#listen-button').addEventListener('click', listen);
  $('#pause-button').addEventListener('click', () => (player.state === 'paused' ? player.resume() : player.pause()));
  $('#stop-button').addEventListener('click', () => {
    stopListening();
    $('#listen-button').focus();
  });
  $('#remind-button').addEventListener('click', remind);
  if (user) {
    const stageNow = await spaces.participants(spaceId).catch(() => ({ participants: [] }));
    const mine = stageNow.participants.find((p) => p.user_id === user.id);
    if (mine) role = mine.role;
    $('#studio-link-row').hidden = !(role === 'host' || role === 'cohost');
  }
  applySpaceState();
  poller.on('state', onState).start();
  addEventListener('pagehide', () => {
    if (playback) listening.leave(spaceId, playback.member).catch(() => undefined);
  });
}

async function remind(event) {
  const button = event.currentTarget;
  if (!(await me())) {
    location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
    return;
  }
  await busy(button, async () => {
    const on = button.getAttribute('aria-pressed') !== 'true';
    await spaces.remind(spaceId, on);
    button.setAttribute('aria-pressed', String(on));
    button.textContent = on ? t('listen.reminder_set') : t('listen.remind');
  });
}

main().catch(showError);

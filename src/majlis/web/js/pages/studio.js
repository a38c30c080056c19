// The host studio: go live, the microphone, the stage with moderation, requests to speak,
// invitations, co-hosts, and ending the space (after a confirmation).

import { listening, spaces, speaking } from '../api.js';
import { loadAudience } from '../audience.js';
import { captionsNotice } from '../captions.js';
import { EventStream } from '../events.js';
import { mountGuests } from '../guests.js';
import { MicPanel } from '../micpanel.js';
import { ReactionBar } from '../reactions.js';
import { renderCounts, renderSpace, showConnection } from '../spacehead.js';
import { StageGrid } from '../stage.js';
import { errorText, t, tParts } from '../i18n.js';
import { StatePoller } from '../statepoll.js';
import {
  $,
  busy,
  confirmDialog,
  formatCount,
  h,
  noticeText,
  renderAccount,
  setText,
  show,
  showError,
  showInfo,
  spaceIdFromPath,
  spaceUrl,
  userText,
} from '../ui.js';

const RANK = { host: 3, cohost: 2, speaker: 1, listener: 0 };

const spaceId = spaceIdFromPath();
const poller = new StatePoller(spaceId);
let user = null;
let space = null;
let role = 'listener';
let mic = null;
let stage = null;
let reactions = null;
let events = null;
let left = false; // removed, or no longer a co-host: the studio is done
let requestsLoading = null;
let captionsState = 'unavailable';
let lastSpeakers = [];
let replayDeleted = false; // as last drawn: redrawn silent once the space has ended

// Controls -------------------------------------------------------------------------------

function applySpaceState({ prepareMic = true } = {}) {
  const isHost = role === 'host';
  show('#go-live', isHost && space.state === 'scheduled');
  show('#end-space', isHost && space.state === 'live');
  show('#edit-button', isHost);
  show('#delete-replay', isHost && space.state === 'ended' && !replayDeleted);
  show('#replay-link', space.state === 'ended' && !replayDeleted);
  if (space.state === 'ended') {
    mic?.stop();
    events?.stop();
    poller.interval = 30000;
    showConnection('idle', t('studio.conn.ended'));
    showInfo(t('studio.ended'));
    // Nothing left to do live: no microphone to allow, nobody to invite or let speak.
    for (const id of ['#mic-slot', '#requests-panel', '#invite-panel', '#stage-captions']) show(id, false);
    watchAudience(false);
    refreshCurve();
    for (const control of document.querySelectorAll('#speakers button')) control.disabled = true;
    stage?.render(lastSpeakers.map((speaker) => ({ ...speaker, speaking: false })));
    return;
  }
  poller.interval = space.state === 'live' ? 1000 : 5000;
  if ((space.state === 'live') !== Boolean(audienceTimer)) watchAudience(space.state === 'live');
  if (prepareMic) mic?.prepare(space.state === 'live');
}

// Live captions: everyone in the studio sees whether they are on; the host switches them.
function renderCaptions(state, reason = null) {
  captionsState = state;
  const notice = captionsNotice(state, reason);
  $('#stage-captions').textContent = notice;
  show('#stage-captions', Boolean(notice) && space.state === 'live');
  const button = $('#captions-switch');
  button.hidden = !(role === 'host' && space.state === 'live' && state !== 'unavailable');
  button.setAttribute('aria-pressed', String(state === 'on'));
  button.textContent = state === 'on' ? t('studio.captions.on') : t('studio.captions.off');
}

async function switchCaptions(event) {
  const on = captionsState !== 'on';
  const changed = await busy(event.currentTarget, () => spaces.captions(spaceId, on));
  if (changed) renderCaptions(on ? 'on' : 'off');
  poller.refresh();
}

async function goLive(event) {
  const started = await busy(event.currentTarget, () => spaces.start(spaceId));
  if (!started) return;
  space = started;
  renderSpace(space);
  applySpaceState({ prepareMic: false });
  // The click is the gesture a browser wants before it asks for the microphone.
  await mic.setLive(true);
  $('#end-space').focus();
}

async function endSpace(event) {
  if (!(await confirmDialog($('#end-dialog')))) {
    event.currentTarget?.focus?.();
    return;
  }
  const ended = await busy($('#end-space'), () => spaces.end(spaceId));
  if (!ended) return;
  space = ended;
  renderSpace(space);
  applySpaceState();
  $('#replay-link').focus();
}

// Who is listening: names of signed-in listeners, a count of anonymous ones ----------------

const AUDIENCE_POLL_MS = 10000;
let audienceTimer = null;

async function refreshAudience() {
  let found;
  try {
    found = await listening.who(spaceId);
  } catch {
    return; // shown again at the next poll
  }
  setText('#audience-count', formatCount(found.count));
  $('#audience-names').replaceChildren(
    ...found.users.map((u) => h('li', { dataset: { userId: u.user_id } }, userText('span', u.display_name), ` @${u.username}`)),
  );
  const others = [];
  if (found.anonymous) {
    others.push(t('studio.audience.anonymous', { count: found.anonymous, number: formatCount(found.anonymous) }));
  }
  if (found.more) others.push(t('studio.audience.more'));
  setText('#audience-more', others.join(t('studio.audience.separator')));
  refreshCurve();
}

/** The host's view of the audience over time: live, at each poll, and once it has ended. */
async function refreshCurve() {
  const audience = await loadAudience(spaceId, space.started_at);
  if (!audience?.chart) return; // unread (the next poll tries again), or too few samples yet
  $('#curve-chart').replaceChildren(audience.chart);
  const { joins, leaves } = audience.flow;
  setText('#curve-flow', t('studio.curve.flow', { peak: audience.peak, joins, leaves }));
  show('#curve-card', true);
}

function watchAudience(on) {
  clearInterval(audienceTimer);
  audienceTimer = null;
  show('#audience-panel', on);
  if (!on) return;
  refreshAudience();
  audienceTimer = setInterval(refreshAudience, AUDIENCE_POLL_MS);
}

// The replay: the host may delete it once the space has ended ------------------------------

async function deleteReplay(event) {
  if (!(await confirmDialog($('#delete-dialog')))) {
    event.currentTarget?.focus?.();
    return;
  }
  const done = await busy($('#delete-replay'), async () => {
    await spaces.deleteReplay(spaceId);
    return true;
  });
  if (!done) return;
  replayDeleted = true;
  show('#delete-replay', false);
  show('#replay-link', false);
  showInfo(t('studio.replay_deleted'));
}

// Details: the host edits the title and description, in any state ----------------------------

function openEdit() {
  $('#edit-title').value = space.title;
  $('#edit-description').value = space.description ?? '';
  setText('#edit-status', '');
  $('#edit-dialog').showModal();
}

async function saveEdit(event) {
  event.preventDefault();
  const title = $('#edit-title').value.trim();
  if (!title) {
    setText('#edit-status', t('studio.edit.need_title'));
    $('#edit-title').focus();
    return;
  }
  try {
    space = await spaces.edit(spaceId, { title, description: $('#edit-description').value.trim() });
  } catch (error) {
    setText('#edit-status', t('studio.edit.not_saved', { reason: errorText(error) }));
    return;
  }
  renderSpace(space);
  $('#edit-dialog').close();
  $('#edit-button').focus();
}

// Stage moderation -----------------------------------------------------------------------

function actionButton(action, label, ariaLabel, run, extraClass = '') {
  return h(
    'button',
    {
      type: 'button',
      class: `small-button ${extraClass}`.trim(),
      dataset: { action },
      'aria-label': ariaLabel,
      onclick: (event) => busy(event.currentTarget, run).then(() => poller.refresh()),
    },
    label,
  );
}

function speakerActions(speaker) {
  if (!user || speaker.user_id === user.id || RANK[role] <= RANK[speaker.role]) return [];
  const name = speaker.display_name;
  const id = speaker.user_id;
  const buttons = [];
  const label = (key) => t(`studio.action.${key}`);
  const aria = (key) => t(`studio.action.${key}.label`, { name });
  if (!speaker.muted) buttons.push(actionButton('mute', label('mute'), aria('mute'), () => speaking.mute(spaceId, id)));
  buttons.push(actionButton('demote', label('demote'), aria('demote'), () => speaking.demote(spaceId, id)));
  if (role === 'host' && speaker.role === 'speaker') {
    buttons.push(actionButton('cohost', label('cohost'), aria('cohost'), () => speaking.addCohost(spaceId, id)));
  }
  if (role === 'host' && speaker.role === 'cohost') {
    buttons.push(
      actionButton('uncohost', label('uncohost'), aria('uncohost'), () => speaking.removeCohost(spaceId, id)),
      actionButton('make-host', label('make_host'), aria('make_host'), () => speaking.transferHost(spaceId, id)),
    );
  }
  buttons.push(
    actionButton('remove', label('remove'), aria('remove'), () => removeSpeaker(speaker, false), 'danger'),
    actionButton('ban', label('ban'), aria('ban'), () => removeSpeaker(speaker, true), 'danger'),
  );
  return buttons;
}


async function removeSpeaker(speaker, ban) {
  const dialog = h(
    'dialog',
    { 'aria-labelledby': 'remove-title' },
    h(
      'form',
      { method: 'dialog', class: 'stack' },
      h('h2', { id: 'remove-title' }, ...tParts(ban ? 'studio.ban.title' : 'studio.remove.title', { name: userText('span', speaker.display_name) })),
      h(
        'p',
        {},
        ban ? t('studio.ban.body') : t('studio.remove.body'),
      ),
      h('label', { for: 'remove-reason' }, t('studio.remove.reason')),
      h('textarea', { id: 'remove-reason', maxlength: 500, rows: 2, dir: 'auto' }),
      h(
        'div',
        { class: 'row' },
        h('button', { type: 'submit', value: 'cancel', autofocus: true }, t('studio.cancel')),
        h('button', { type: 'submit', value: 'confirm', class: 'danger', id: 'remove-confirm' }, ban ? t('studio.action.ban') : t('studio.action.remove')),
      ),
    ),
  );
  document.body.append(dialog);
  try {
    if (await confirmDialog(dialog)) {
      await speaking.remove(spaceId, speaker.user_id, ban, $('#remove-reason', dialog).value);
    }
  } finally {
    dialog.remove();
  }
}

// Requests to speak ------------------------------------------------------------------------

async function loadRequests() {
  // Coalesce bursts of events into one request at a time, plus one follow-up.
  if (requestsLoading) {
    requestsLoading.again = true;
    return;
  }
  requestsLoading = { again: false };
  try {
    const { requests } = await speaking.requests(spaceId);
    renderRequests(requests);
  } catch (error) {
    if (error.status !== 409) showError(error);
  } finally {
    const again = requestsLoading.again;
    requestsLoading = null;
    if (again) loadRequests();
  }
}

function renderRequests(requests) {
  const list = $('#requests');
  setText('#request-count', formatCount(requests.length));
  if (!requests.length) {
    list.replaceChildren(h('li', { class: 'empty' }, t('studio.requests.none')));
    return;
  }
  list.replaceChildren(
    ...requests.map((request) =>
      h(
        'li',
        { dataset: { userId: request.user_id } },
        h('span', {}, userText('strong', request.display_name), ' ', userText('span', `@${request.username}`, { class: 'muted' })),
        h(
          'span',
          { class: 'row' },
          h(
            'button',
            {
              type: 'button',
              class: 'primary small-button',
              dataset: { action: 'approve' },
              'aria-label': t('studio.requests.approve.label', { name: request.display_name }),
              onclick: (event) => answerRequest(event.currentTarget, request, true),
            },
            t('studio.requests.approve'),
          ),
          h(
            'button',
            {
              type: 'button',
              class: 'small-button',
              dataset: { action: 'decline' },
              'aria-label': t('studio.requests.decline.label', { name: request.display_name }),
              onclick: (event) => answerRequest(event.currentTarget, request, false),
            },
            t('studio.requests.decline'),
          ),
        ),
      ),
    ),
  );
}

async function answerRequest(button, request, approve) {
  await busy(button, () => (approve ? speaking.approve : speaking.decline)(spaceId, request.user_id));
  loadRequests();
  poller.refresh();
}

async function invite(event) {
  event.preventDefault();
  const input = $('#invite-user');
  const username = input.value.trim();
  if (!username) {
    showError(t('studio.invite.need_user'));
    input.focus();
    return;
  }
  // The answer is told beside the form, never an old "sent" beside a new error.
  setText('#invite-status', t('studio.invite.sending'));
  let failure = null;
  const done = await busy(event.submitter, async () => {
    try {
      await speaking.invite(spaceId, username);
    } catch (error) {
      failure = error;
      throw error;
    }
    return true;
  });
  if (done) {
    setText('#invite-status', t('studio.invite.sent', { username }));
    input.value = '';
  } else {
    setText('#invite-status', t('studio.invite.not_sent', { reason: failure ? errorText(failure) : t('studio.invite.an_error') }));
  }
}

// Events -----------------------------------------------------------------------------------

const EVENTS_TEXT = {
  connecting: ['connecting', 'studio.events.connecting'],
  connected: ['connected', 'studio.events.connected'],
  reconnecting: ['reconnecting', 'studio.events.reconnecting'],
  closed: ['idle', 'studio.events.closed'],
};

function openEvents() {
  events = new EventStream(spaceId)
    .on('state', ({ state, inMs }) => {
      const node = $('#events-state');
      const [dot, key] = EVENTS_TEXT[state] ?? ['idle', null];
      const text = key ? t(key) : t('studio.events.other', { state });
      node.dataset.state = dot;
      node.textContent = inMs ? t('studio.events.in', { text, seconds: Math.ceil(inMs / 1000) }) : text;
    })
    .on('hello', (hello) => {
      loadRequests();
      poller.refresh();
      const mine = hello.participants.find((p) => p.user_id === user.id);
      if (mine && mic) mic.applyMute(mine.muted, mine.muted ? 'moderator' : null);
    })
    .on('speak_requested', loadRequests)
    .on('speak_request_withdrawn', loadRequests)
    .on('speak_request_declined', loadRequests)
    .on('invite_declined', ({ data }) => setText('#invite-status', t('studio.invite.declined', { user: String(data.user_id) })))
    .on('role_changed', ({ data }) => {
      poller.refresh();
      loadRequests();
      if (data.user_id !== user.id) return;
      if (RANK[data.role] < RANK.cohost) return leaveStudio(t('studio.no_longer_cohost'));
      // Hosting passed to or from me: the host's controls follow it.
      role = data.role;
      document.body.dataset.role = role;
      applySpaceState({ prepareMic: false });
      renderCaptions(captionsState);
    })
    .on('host_changed', ({ data }) => {
      const gone = data.reason === 'host_absent' ? '.absent' : '';
      const who = data.user_id === user.id ? 'me' : 'other';
      showInfo(t(`studio.host_changed.${who}${gone}`, { username: data.username }));
    })
    .on('muted', ({ data }) => {
      if (data.user_id === user.id) mic?.applyMute(true, 'moderator');
      poller.refresh();
    })
    .on('unmuted', () => poller.refresh())
    .on('captions', ({ data }) => {
      // The host's switch does not make captions available (no model, a language it lacks).
      if (captionsState !== 'unavailable') renderCaptions(data.on ? 'on' : 'off');
    })
    // A statement of reasons comes to the removed person alone, just before the space's
    // neutral 'removed' (which closes their socket).
    .on('notice', ({ data }) => leaveStudio(noticeText(data.notice)))
    .on('removed', ({ data }) => {
      if (data.user_id !== user.id) poller.refresh();
      else if (!left) leaveStudio(t('studio.removed'));
    })
    .on('space_ended', async () => {
      space = await spaces.get(spaceId);
      renderSpace(space);
      applySpaceState();
    })
    .start();
}

function leaveStudio(message) {
  left = true;
  mic?.stop();
  events?.stop();
  poller.stop();
  showError(message);
  for (const id of ['#host-controls', '#requests-panel']) show(id, false);
}

// Start ------------------------------------------------------------------------------------

async function main() {
  if (!spaceId) return;
  user = await renderAccount();
  if (!user) {
    location.replace(`/login?next=${encodeURIComponent(location.pathname)}`);
    return;
  }
  try {
    space = await spaces.get(spaceId);
  } catch (error) {
    setText('#space-title', error.status === 404 ? t('studio.no_such_space') : t('studio.cannot_load'));
    showError(error);
    return;
  }
  renderSpace(space);
  $('#listener-link').href = spaceUrl(spaceId);
  $('#replay-link').href = spaceUrl(spaceId, 'replay');
  const { participants } = await spaces.participants(spaceId);
  role = participants.find((p) => p.user_id === user.id)?.role ?? 'listener';
  if (role !== 'host' && role !== 'cohost') {
    showError(t('studio.not_host'));
    show('#requests-panel', false);
    $('#go-live').hidden = true;
    $('#end-space').hidden = true;
    return;
  }
  document.body.dataset.role = role;
  mic = new MicPanel($('#mic-slot'), { spaceId, userId: user.id });
  stage = new StageGrid($('#speakers'), { actions: speakerActions, meId: user.id });
  reactions = new ReactionBar($('#reactions'));
  $('#go-live').addEventListener('click', goLive);
  $('#end-space').addEventListener('click', endSpace);
  $('#edit-button').addEventListener('click', openEdit);
  $('#delete-replay').addEventListener('click', deleteReplay);
  $('#edit-form').addEventListener('submit', saveEdit);
  $('#edit-cancel').addEventListener('click', () => $('#edit-dialog').close());
  $('#captions-switch').addEventListener('click', switchCaptions);
  $('#invite-form').addEventListener('submit', invite);
  if (space.visibility === 'private') mountGuests(spaceId).catch(showError);
  poller
    .on('state', (state) => {
      renderCounts(state);
      lastSpeakers = state.speakers;
      // Levels linger on the bus for a moment after the end: nobody speaks in an ended space.
      const ended = state.space.state === 'ended';
      stage.render(ended ? state.speakers.map((speaker) => ({ ...speaker, speaking: false })) : state.speakers);
      reactions.update(state.reactions);
      renderCaptions(state.captions, state.captions_reason);
      if (state.space.state !== space.state) {
        space = state.space;
        renderSpace(space);
        applySpaceState();
      }
    })
    .on('connection', ({ state, inMs }) => {
      if (state === 'live') showConnection('live', space.state === 'live' ? t('studio.conn.on_air') : t('studio.conn.connected'));
      else showConnection(state, t('studio.conn.lost', { seconds: Math.ceil(inMs / 1000) }));
    })
    .start();
  showConnection(space.state === 'live' ? 'live' : 'idle', space.state === 'live' ? t('studio.conn.on_air') : t('studio.conn.not_live'));
  applySpaceState();
  if (space.state !== 'ended') openEvents();
  else renderRequests([]);
}

main().catch(showError);

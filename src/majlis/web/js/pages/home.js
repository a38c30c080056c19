// Home and discovery: live now (with listener counts), upcoming (reminders, .ics) and
// recent replays; one search box matches titles and host names.

import { spaces } from '../api.js';
import { t, tParts } from '../i18n.js';
import { $, busy, formatCount, formatWhen, h, renderAccount, showError, spaceUrl, userText } from '../ui.js';

let user = null;
const counts = new Map();

function spaceItem(space, extra) {
  const page = space.state === 'ended' ? spaceUrl(space.id, 'replay') : spaceUrl(space.id);
  return h(
    'li',
    { class: 'space-item', dataset: { spaceId: space.id } },
    h('h3', { dir: 'auto' }, h('a', { href: page }, space.title)),
    h('span', { class: 'meta' }, t('pages.hosted_by'), ' ', userText('span', `@${space.host_username}`)),
    space.description ? userText('p', truncate(space.description, 140), { class: 'meta' }) : null,
    extra,
  );
}

function truncate(text, n) {
  const letters = Array.from(text);
  return letters.length > n ? `${letters.slice(0, n).join('')}…` : text;
}


function liveItem(space) {
  const count = h('strong', { class: 'listeners' }, '…');
  counts.set(space.id, count);
  return spaceItem(
    space,
    h(
      'p',
      { class: 'row meta' },
      h('span', { class: 'badge live' }, t('pages.home.live')),
      h('span', {}, ...tParts('pages.home.listening', { count })),
      h('a', { class: 'button primary small-button', href: spaceUrl(space.id) }, t('pages.home.listen')),
    ),
  );
}

function upcomingItem(space) {
  const remind = h('button', { type: 'button', class: 'small-button', 'aria-pressed': 'false' }, t('pages.home.remind'));
  remind.addEventListener('click', () =>
    busy(remind, async () => {
      if (!user) {
        location.assign(`/login?next=${encodeURIComponent('/')}`);
        return;
      }
      const on = remind.getAttribute('aria-pressed') !== 'true';
      await spaces.remind(space.id, on);
      remind.setAttribute('aria-pressed', String(on));
      remind.textContent = on ? t('pages.home.reminder_set') : t('pages.home.remind');
    }),
  );
  return spaceItem(
    space,
    h(
      'p',
      { class: 'row meta' },
      h('span', { class: 'badge scheduled' }, t('pages.home.upcoming')),
      h('time', { datetime: new Date(space.scheduled_for * 1000).toISOString() }, formatWhen(space.scheduled_for)),
      remind,
      h('a', { class: 'button small-button', href: spaces.calendarUrl(space.id), download: 'space.ics' }, '.ics'),
    ),
  );
}

function replayItem(space) {
  const when = space.ended_at ?? space.started_at ?? space.created_at;
  return spaceItem(
    space,
    h(
      'p',
      { class: 'row meta' },
      h('span', { class: 'badge' }, t('pages.home.replay')),
      h(
        'span',
        {},
        t('pages.home.ended', { when: formatWhen(when), count: space.peak_listeners, peak: formatCount(space.peak_listeners) }),
      ),
    ),
  );
}

function fill(list, items, emptyText) {
  list.setAttribute('aria-busy', 'false');
  list.replaceChildren(...(items.length ? items : [h('li', { class: 'empty' }, emptyText)]));
}

async function refreshCounts() {
  await Promise.all(
    [...counts].map(async ([id, node]) => {
      try {
        const state = await spaces.state(id, { retries: 0 });
        node.textContent = formatCount(state.listener_count);
      } catch {
        // keep the last number
      }
    }),
  );
}

async function load(q) {
  counts.clear();
  const query = { q: q || undefined, limit: 24 };
  try {
    const [live, upcoming, ended] = await Promise.all([
      spaces.list({ ...query, state: 'live' }),
      spaces.list({ ...query, state: 'scheduled' }),
      spaces.list({ ...query, state: 'ended', limit: 12 }),
    ]);
    const noLive = q ? t('pages.home.no_live_matching', { q }) : t('pages.home.no_live');
    const noUpcoming = q ? t('pages.home.no_upcoming_matching', { q }) : t('pages.home.no_upcoming');
    const noReplays = q ? t('pages.home.no_replays_matching', { q }) : t('pages.home.no_replays');
    fill($('#live-list'), live.spaces.map(liveItem), noLive);
    fill($('#upcoming-list'), upcoming.spaces.map(upcomingItem), noUpcoming);
    fill($('#replay-list'), ended.spaces.map(replayItem), noReplays);
    const total = live.spaces.length + upcoming.spaces.length + ended.spaces.length;
    $('#search-summary').textContent = q ? t('pages.home.found', { count: total, q }) : '';
    await refreshCounts();
  } catch (error) {
    showError(error);
  }
}

async function main() {
  user = await renderAccount();
  const q = new URLSearchParams(location.search).get('q') ?? '';
  $('#q').value = q;
  $('#search').addEventListener('submit', (event) => {
    event.preventDefault();
    const value = $('#q').value.trim();
    const url = value ? `/?q=${encodeURIComponent(value)}` : '/';
    history.replaceState(null, '', url);
    load(value);
  });
  await load(q);
  setInterval(refreshCounts, 10000);
}

main();

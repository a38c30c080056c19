// The operator's page: live spaces with listeners and waiting rooms, media nodes and
// their load, this worker's queueing delay. Refreshed every few seconds.

import { api } from '../api.js';
import { clockTime, number, t } from '../i18n.js';
import { $, formatCount, formatWhen, h, renderAccount, setText, show, showError, spaceUrl, userText } from '../ui.js';

const REFRESH_MS = 5000;

function spaceRow(s) {
  return h(
    'tr',
    { dataset: { space: s.id } },
    h('td', {}, h('a', { href: spaceUrl(s.id) }, userText('span', s.title)), s.visibility === 'private' ? ` ${t('desk.live.private')}` : ''),
    h('td', {}, `@${s.host_username}`),
    h('td', { class: 'num' }, formatCount(s.listeners)),
    h('td', { class: 'num' }, formatCount(s.waiting)),
    h('td', {}, s.started_at ? formatWhen(s.started_at) : '–'),
  );
}

function nodeRow(n) {
  return h(
    'tr',
    {},
    h('td', {}, n.node_id),
    h('td', { class: 'num' }, number(n.spaces, { useGrouping: false })),
    h('td', { class: 'num' }, number(n.capacity, { useGrouping: false })),
    h('td', {}, n.draining ? t('desk.nodes.draining') : t('desk.nodes.taking')),
  );
}

async function refresh() {
  const now = await api.get('/admin/overview', { retries: 0 });
  setText('#live-count', number(now.spaces.length));
  $('#live-rows').replaceChildren(...now.spaces.map(spaceRow));
  $('#node-rows').replaceChildren(...now.nodes.map(nodeRow));
  show('#nodes-embedded', now.nodes.length === 0);
  show('#nodes-table', now.nodes.length > 0);
  setText('#loop-lag', t('desk.lag.ms', { ms: number(now.loop_lag_ms, { useGrouping: false }) }));
  setText('#admin-updated', t('desk.updated', { time: clockTime() }));
}

async function main() {
  const user = await renderAccount();
  if (!user) {
    location.replace(`/login?next=${encodeURIComponent('/admin')}`);
    return;
  }
  if (!user.moderator) {
    showError(t('desk.admin.only_moderators'));
    return;
  }
  await refresh();
  setInterval(() => refresh().catch(showError), REFRESH_MS);
}

main().catch(showError);

// The header's notifications: a button with the unread count as a badge, and a small list of
// the latest (a space someone asked to be reminded of started, or did not happen). Polled
// every 30 s while the page is visible; text goes in as text nodes only.

import { notifications } from './api.js';
import { dateTime, number, t } from './i18n.js';
import { h, spaceUrl, userText } from './ui.js';

const POLL_MS = 30000;
const SHOWN = 8;

const WHAT = {
  space_started: 'pages.notifications.started',
  space_missed: 'pages.notifications.missed',
};

/** Mount the button and its list in `nav` (the header's account area). */
export function mountNotifications(nav) {
  const badge = h('span', { class: 'badge', hidden: true, 'aria-hidden': 'true' });
  const button = h(
    'button',
    { type: 'button', class: 'small-button', id: 'notifications-button', 'aria-expanded': 'false', 'aria-controls': 'notifications' },
    t('pages.notifications.button'),
    badge,
  );
  const list = h('ul', { class: 'notification-list' });
  const panel = h('div', { class: 'notifications', id: 'notifications', hidden: true }, list);
  let latest = [];

  const render = (page) => {
    latest = page.notifications;
    badge.textContent = page.unread > 99 ? `${number(99)}+` : number(page.unread);
    badge.hidden = page.unread === 0;
    button.setAttribute('aria-label', t('pages.notifications.label', { count: page.unread }));
    list.replaceChildren(
      ...(latest.length ? latest.map(item) : [h('li', { class: 'muted' }, t('pages.notifications.none'))]),
    );
  };
  const poll = async () => {
    if (document.visibilityState !== 'hidden') {
      try {
        render(await notifications.mine(SHOWN));
      } catch {
        // The next poll tries again; the badge keeps what it showed.
      }
    }
    setTimeout(poll, POLL_MS);
  };
  button.addEventListener('click', async () => {
    const open = panel.hidden;
    panel.hidden = !open;
    button.setAttribute('aria-expanded', String(open));
    if (open && latest.some((n) => !n.read)) {
      try {
        await notifications.read(latest[0].seq);
        render(await notifications.mine(SHOWN));
      } catch {
        // Left unread: nothing lost.
      }
    }
  });
  nav.prepend(h('div', { class: 'notifications-area' }, button, panel));
  poll();
}

function item(n) {
  const when = dateTime(n.at);
  return h(
    'li',
    { class: n.read ? '' : 'unread' },
    h('a', { href: spaceUrl(n.space_id) }, t(WHAT[n.kind] ?? 'pages.notifications.news'), userText('span', n.title)),
    h('span', { class: 'muted when' }, ` ${when}`),
  );
}

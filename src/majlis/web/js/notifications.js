// The header's notifications: a button with the unread count as a badge, and a small list of
// the latest (a space someone asked to be reminded of started, or did not happen). Polled
// every 30 s while the page is visible; text goes in as text nodes only.

import { notifications } from './api.js';
import { h, spaceUrl, userText } from './ui.js';

const POLL_MS = 30000;
const SHOWN = 8;

const WHAT = {
  space_started: 'Live now',
  space_missed: 'Did not happen',
};

/** Mount the button and its list in `nav` (the header's account area). */
export function mountNotifications(nav) {
  const badge = h('span', { class: 'badge', hidden: true, 'aria-hidden': 'true' });
  const button = h(
    'button',
    { type: 'button', class: 'small-button', id: 'notifications-button', 'aria-expanded': 'false', 'aria-controls': 'notifications' },
    'Notifications',
    badge,
  );
  const list = h('ul', { class: 'notification-list' });
  const panel = h('div', { class: 'notifications', id: 'notifications', hidden: true }, list);
  let latest = [];

  const render = (page) => {
    latest = page.notifications;
    badge.textContent = page.unread > 99 ? '99+' : String(page.unread);
    badge.hidden = page.unread === 0;
    button.setAttribute('aria-label', `Notifications, ${page.unread} unread`);
    list.replaceChildren(
      ...(latest.length ? latest.map(item) : [h('li', { class: 'muted' }, 'Nothing yet.')]),
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
  const when = new Date(n.at * 1000).toLocaleString();
  return h(
    'li',
    { class: n.read ? '' : 'unread' },
    h('a', { href: spaceUrl(n.space_id) }, `${WHAT[n.kind] ?? 'News'}: `, userText('span', n.title)),
    h('span', { class: 'muted when' }, ` ${when}`),
  );
}

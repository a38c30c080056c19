// A private space's guest list in the studio: add by username, take off with a button.
// What happened is said beside the form, not at the top of the page.

import { spaces } from './api.js';
import { errorText, t } from './i18n.js';
import { $, formatCount, h, setText, show, userText } from './ui.js';

function row(spaceId, guest, refresh) {
  const remove = h(
    'button',
    {
      type: 'button',
      class: 'small-button',
      dataset: { action: 'remove-guest' },
      onclick: async (event) => {
        event.currentTarget.disabled = true;
        try {
          await spaces.removeGuest(spaceId, guest.user_id);
          setText('#guest-status', t('studio.guests.removed', { username: guest.username }));
        } catch (error) {
          setText('#guest-status', errorText(error));
        }
        await refresh();
      },
    },
    t('studio.action.remove'),
  );
  return h('li', { dataset: { userId: guest.user_id } }, userText('span', guest.display_name), ' ', h('span', { class: 'muted small' }, `@${guest.username}`), ' ', remove);
}

/** Show and wire `#guests-panel` for the private space `spaceId`. */
export async function mountGuests(spaceId) {
  show('#guests-panel', true);
  const refresh = async () => {
    const { guests } = await spaces.guests(spaceId);
    setText('#guest-count', formatCount(guests.length));
    $('#guests').replaceChildren(...guests.map((g) => row(spaceId, g, refresh)));
  };
  $('#guest-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const input = $('#guest-user');
    const username = input.value.trim();
    if (!username) {
      setText('#guest-status', t('studio.guests.need_user'));
      input.focus();
      return;
    }
    $('#guest-add').disabled = true;
    try {
      const guest = await spaces.addGuest(spaceId, username);
      setText('#guest-status', t('studio.guests.added', { username: guest.username }));
      input.value = '';
      await refresh();
    } catch (error) {
      setText('#guest-status', errorText(error));
    } finally {
      $('#guest-add').disabled = false;
    }
  });
  await refresh();
}

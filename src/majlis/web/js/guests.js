// A private space's guest list in the studio: add by username, take off with a button.
// What happened is said beside the form, not at the top of the page.

import { spaces } from './api.js';
import { $, h, setText, show, userText } from './ui.js';

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
          setText('#guest-status', `${guest.username} can no longer listen.`);
        } catch (error) {
          setText('#guest-status', error.reason || String(error));
        }
        await refresh();
      },
    },
    'Remove',
  );
  return h('li', { dataset: { userId: guest.user_id } }, userText('span', guest.display_name), ' ', h('span', { class: 'muted small' }, `@${guest.username}`), ' ', remove);
}

/** Show and wire `#guests-panel` for the private space `spaceId`. */
export async function mountGuests(spaceId) {
  show('#guests-panel', true);
  const refresh = async () => {
    const { guests } = await spaces.guests(spaceId);
    setText('#guest-count', guests.length);
    $('#guests').replaceChildren(...guests.map((g) => row(spaceId, g, refresh)));
  };
  $('#guest-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const input = $('#guest-user');
    const username = input.value.trim();
    if (!username) {
      setText('#guest-status', 'Give a username.');
      input.focus();
      return;
    }
    $('#guest-add').disabled = true;
    try {
      const guest = await spaces.addGuest(spaceId, username);
      setText('#guest-status', `${guest.username} can listen now.`);
      input.value = '';
      await refresh();
    } catch (error) {
      setText('#guest-status', error.reason || String(error));
    } finally {
      $('#guest-add').disabled = false;
    }
  });
  await refresh();
}

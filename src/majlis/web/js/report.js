// Report a space to the site's moderators, from the listener page: a category and, if the
// person wants, what happened. Anyone may report; the server limits how often.

import { reports } from './api.js';
import { $, busy, setText } from './ui.js';

/** Wire `#report-button` and `#report-dialog` to report the space `spaceId`. */
export function attachReport(spaceId) {
  const button = $('#report-button');
  const dialog = $('#report-dialog');
  if (!button || !dialog) return;
  button.hidden = false;
  button.addEventListener('click', () => {
    $('#report-text').value = '';
    dialog.showModal();
  });
  $('#report-cancel').addEventListener('click', () => dialog.close());
  $('#report-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = {
      subject: 'space',
      space_id: spaceId,
      category: $('#report-category').value,
      text: $('#report-text').value.trim(),
    };
    dialog.close();
    const filed = await busy(button, () => reports.file(body));
    if (filed) setText('#report-status', 'Thank you: the site’s moderators will look at it.');
  });
}

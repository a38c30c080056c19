// Report a space to the site's moderators, from the listener page: a category and, if the
// person wants, what happened. Anyone may report; the server limits how often.

import { reports } from './api.js';
import { $, busy, h, setText } from './ui.js';

/** The choices of whom to report: the space, or one of the people on its stage now. */
function fillAbout(speakers) {
  const select = $('#report-about');
  if (!select) return;
  select.replaceChildren(
    h('option', { value: '' }, 'The space'),
    ...speakers.map((s) => h('option', { value: s.user_id }, `${s.display_name} (on stage)`)),
  );
}

/**
 * Wire `#report-button` and `#report-dialog` to report the space `spaceId`, or a speaker
 * (`speakers()` gives the stage as the page last saw it), or the clip `clipId`.
 */
export function attachReport({ spaceId = null, clipId = null, speakers = () => [] }) {
  const button = $('#report-button');
  const dialog = $('#report-dialog');
  if (!button || !dialog) return;
  button.hidden = false;
  button.addEventListener('click', () => {
    $('#report-text').value = '';
    fillAbout(speakers());
    dialog.showModal();
  });
  $('#report-cancel').addEventListener('click', () => dialog.close());
  $('#report-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const about = $('#report-about')?.value;
    const body = { category: $('#report-category').value, text: $('#report-text').value.trim() };
    if (clipId) Object.assign(body, { subject: 'clip', clip_id: clipId });
    else if (about) Object.assign(body, { subject: 'speaker', space_id: spaceId, user_id: about });
    else Object.assign(body, { subject: 'space', space_id: spaceId });
    dialog.close();
    const filed = await busy(button, () => reports.file(body));
    if (filed) setText('#report-status', 'Thank you: the site’s moderators will look at it.');
  });
}

// Report a space, a speaker on its stage, or a clip to the site's moderators: a category
// and, if the person wants, what happened. Anyone may report; the server limits how often.
// The dialog is built here, so every page that reports has the same one.

import { reports } from './api.js';
import { t } from './i18n.js';
import { $, busy, h, setText } from './ui.js';

const CATEGORIES = {
  harassment: t('listen.report.harassment'),
  hate: t('listen.report.hate'),
  spam: t('listen.report.spam'),
  off_topic: t('listen.report.off_topic'),
  other: t('listen.report.other'),
};

function field(label, control, hint) {
  return h('div', {}, h('label', { for: control.id }, label, hint ? [' ', h('span', { class: 'hint' }, hint)] : null), control);
}

/** The dialog; `about` (a select of whom) only where there is a stage to choose from. */
function buildDialog(title, withAbout) {
  const category = h('select', { id: 'report-category', name: 'category' }, ...Object.entries(CATEGORIES).map(([value, text]) => h('option', { value, selected: value === 'other' }, text)));
  const text = h('textarea', { id: 'report-text', name: 'text', maxlength: 2000, rows: 3, dir: 'auto' });
  const about = withAbout ? field(t('listen.report.about'), h('select', { id: 'report-about', name: 'about' })) : null;
  const dialog = h(
    'dialog',
    { id: 'report-dialog', 'aria-labelledby': 'report-dialog-title' },
    h(
      'form',
      { class: 'stack', id: 'report-form', novalidate: true },
      h('h2', { id: 'report-dialog-title' }, title),
      h('p', { class: 'muted small' }, t('listen.report.intro')),
      about,
      field(t('listen.report.category'), category),
      field(t('listen.report.text'), text, t('listen.report.optional')),
      h('div', { class: 'row' }, h('button', { type: 'button', id: 'report-cancel' }, t('listen.report.cancel')), h('button', { type: 'submit', class: 'primary', id: 'report-send' }, t('listen.report.send'))),
    ),
  );
  $('main').append(dialog);
  return dialog;
}

/** The choices of whom to report: the space, or one of the people on its stage now. */
function fillAbout(speakers) {
  const select = $('#report-about');
  if (!select) return;
  select.replaceChildren(
    h('option', { value: '' }, t('listen.report.the_space')),
    ...speakers.map((s) => h('option', { value: s.user_id }, t('listen.report.on_stage', { name: s.display_name }))),
  );
}

/**
 * Wire `#report-button` to report the space `spaceId`, or a speaker (`speakers()` gives
 * the stage as the page last saw it), or the clip `clipId`.
 */
export function attachReport({ spaceId = null, clipId = null, speakers = () => [] }) {
  const button = $('#report-button');
  if (!button) return;
  const dialog = buildDialog(clipId ? t('listen.report.title_clip') : t('listen.report.title_space'), !clipId);
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
    if (filed) setText('#report-status', t('listen.report.thanks'));
  });
}

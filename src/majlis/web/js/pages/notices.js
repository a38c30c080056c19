// The caller's statements of reasons: what was decided about them, why, on what ground,
// and, for a site moderator's decision, an appeal (once) and its outcome.

import { appeals, notices } from '../api.js';
import { t } from '../i18n.js';
import { $, busy, formatWhen, h, noticeAppeal, noticeDone, renderAccount, show, showError, userText } from '../ui.js';

const GROUNDS = {
  house_rules: 'pages.notices.ground.house_rules',
  terms_of_service: 'pages.notices.ground.terms_of_service',
};

const CATEGORIES = {
  harassment: 'pages.notices.category.harassment',
  hate: 'pages.notices.category.hate',
  spam: 'pages.notices.category.spam',
  off_topic: 'pages.notices.category.off_topic',
  other: 'pages.notices.category.other',
};

function appealState(appeal) {
  let state = t('pages.notices.appeal_waiting');
  if (appeal.outcome === 'reversed') state = t('pages.notices.appeal_reversed');
  if (appeal.outcome === 'upheld') state = t('pages.notices.appeal_upheld');
  return h(
    'p',
    { class: 'appeal-state', dataset: { outcome: appeal.outcome ?? 'open' } },
    state,
    appeal.reason ? [' ', userText('span', t('pages.notices.quoted', { text: appeal.reason }))] : null,
  );
}

function appealForm(notice) {
  const id = `appeal-${notice.id}`;
  const text = h('textarea', { id, maxlength: 2000, rows: 3, dir: 'auto' });
  const send = h('button', { type: 'submit', class: 'primary' }, t('pages.notices.appeal'));
  const form = h(
    'form',
    {
      class: 'stack appeal-form',
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        const why = text.value.trim();
        if (!why) {
          showError(t('pages.notices.say_why'));
          text.focus();
          return;
        }
        const appeal = await busy(send, () => notices.appeal(notice.id, why));
        if (appeal) form.replaceWith(appealState(appeal));
      },
    },
    h('label', { for: id }, t('pages.notices.appeal_label')),
    text,
    h('div', { class: 'row' }, send),
  );
  return form;
}

function item(notice, appeal) {
  const how = notice.automated ? t('pages.notices.by_machine') : t('pages.notices.by_person');
  const category = CATEGORIES[notice.category] ? t(CATEGORIES[notice.category]) : notice.category.replace('_', ' ');
  const ground = GROUNDS[notice.ground] ? t(GROUNDS[notice.ground]) : notice.ground;
  const li = h(
    'li',
    { class: 'card notice-item', dataset: { notice: notice.id, action: notice.action } },
    h('p', {}, h('strong', {}, noticeDone(notice)), ' ', h('span', { class: 'muted small' }, formatWhen(notice.at))),
    notice.text ? h('p', {}, t('pages.notices.why'), ' ', userText('span', notice.text)) : null,
    h('p', { class: 'muted small' }, t('pages.notices.detail', { category, ground, how })),
    h('p', { class: 'small' }, noticeAppeal(notice)),
  );
  if (appeal) li.append(appealState(appeal));
  else if (notice.ground === 'terms_of_service') li.append(appealForm(notice));
  return li;
}

async function main() {
  const user = await renderAccount();
  if (!user) {
    location.replace(`/login?next=${encodeURIComponent('/notices')}`);
    return;
  }
  const [{ notices: list }, { appeals: mine }] = await Promise.all([notices.mine(), appeals.mine()]);
  const byNotice = new Map(mine.map((a) => [a.notice_id, a]));
  show('#none', list.length === 0);
  $('#notices').replaceChildren(...list.map((n) => item(n, byNotice.get(n.id))));
}

main().catch(showError);

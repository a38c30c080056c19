// The caller's statements of reasons: what was decided about them, why, on what ground,
// and, for a site moderator's decision, an appeal (once) and its outcome.

import { appeals, notices } from '../api.js';
import { $, busy, formatWhen, h, noticeDone, renderAccount, show, showError, userText } from '../ui.js';

const GROUNDS = {
  house_rules: 'the space’s own rules (its host decided)',
  terms_of_service: 'the site’s terms of service (a site moderator decided)',
};

function appealState(appeal) {
  let state = 'Your appeal is waiting for a moderator.';
  if (appeal.outcome === 'reversed') state = 'Your appeal was accepted: the decision was reversed.';
  if (appeal.outcome === 'upheld') state = 'Your appeal was turned down: the decision stands.';
  return h(
    'p',
    { class: 'appeal-state', dataset: { outcome: appeal.outcome ?? 'open' } },
    state,
    appeal.reason ? [' ', userText('span', `“${appeal.reason}”`)] : null,
  );
}

function appealForm(notice) {
  const id = `appeal-${notice.id}`;
  const text = h('textarea', { id, maxlength: 2000, rows: 3, dir: 'auto' });
  const send = h('button', { type: 'submit', class: 'primary' }, 'Appeal');
  const form = h(
    'form',
    {
      class: 'stack appeal-form',
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        const why = text.value.trim();
        if (!why) {
          showError('Say why the decision was wrong.');
          text.focus();
          return;
        }
        const appeal = await busy(send, () => notices.appeal(notice.id, why));
        if (appeal) form.replaceWith(appealState(appeal));
      },
    },
    h('label', { for: id }, 'Appeal: why was this wrong?'),
    text,
    h('div', { class: 'row' }, send),
  );
  return form;
}

function item(notice, appeal) {
  const how = notice.automated ? 'Decided by a machine.' : 'Decided by a person.';
  const li = h(
    'li',
    { class: 'card notice-item', dataset: { notice: notice.id, action: notice.action } },
    h('p', {}, h('strong', {}, noticeDone(notice)), ' ', h('span', { class: 'muted small' }, formatWhen(notice.at))),
    notice.text ? h('p', {}, 'Why: ', userText('span', notice.text)) : null,
    h('p', { class: 'muted small' }, `Kind of reason: ${notice.category.replace('_', ' ')}. Ground: ${GROUNDS[notice.ground] ?? notice.ground}. ${how}`),
    h('p', { class: 'small' }, notice.appeal),
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

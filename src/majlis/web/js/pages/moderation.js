// The site moderators' desk: open reports, oldest first, each decided once; open appeals,
// each decided by a moderator other than the one who made the decision.

import { desk } from '../api.js';
import { $, busy, formatWhen, h, renderAccount, setText, showError, showInfo, spaceUrl, userText } from '../ui.js';

const CATEGORIES = ['harassment', 'hate', 'spam', 'off_topic', 'other'];
const DECISIONS = {
  dismiss: 'Dismiss: nothing wrong',
  warn: 'Warn the person',
  remove: 'Remove the speaker from the space',
  end: 'End the space',
  suspend: 'Suspend the account',
};

function select(id, options, chosen) {
  return h('select', { id }, ...Object.entries(options).map(([value, text]) => h('option', { value, selected: value === chosen }, text)));
}

function field(label, control) {
  return h('div', {}, h('label', { for: control.id }, label), control);
}

function reportItem(report) {
  const key = report.id;
  const decisions = { ...DECISIONS };
  if (!report.user_id) delete decisions.remove;
  const decision = select(`decision-${key}`, decisions, 'dismiss');
  const category = select(`category-${key}`, Object.fromEntries(CATEGORIES.map((c) => [c, c.replace('_', ' ')])), report.category);
  const reason = h('input', { type: 'text', id: `reason-${key}`, maxlength: 500, dir: 'auto' });
  const days = h('input', { type: 'number', id: `days-${key}`, min: 1, max: 366, value: 7 });
  const daysField = field('Days', days);
  daysField.hidden = true;
  decision.addEventListener('change', () => {
    daysField.hidden = decision.value !== 'suspend';
  });
  const decide = h('button', { type: 'submit', class: 'primary' }, 'Decide');
  const about = report.subject === 'speaker' ? `speaker ${report.user_id}` : report.subject === 'clip' ? `clip ${report.clip_id}` : 'the space';
  return h(
    'li',
    { class: 'card report-item', dataset: { report: key } },
    h(
      'p',
      {},
      h('strong', {}, `Reported: ${about} (${report.category.replace('_', ' ')})`),
      ' · ',
      h('a', { href: spaceUrl(report.space_id) }, 'open the space'),
      ' ',
      h('span', { class: 'muted small' }, formatWhen(report.created_at)),
    ),
    report.text ? userText('p', report.text) : h('p', { class: 'muted small' }, 'No details given.'),
    h(
      'form',
      {
        class: 'stack',
        novalidate: true,
        onsubmit: async (event) => {
          event.preventDefault();
          const body = { decision: decision.value, category: category.value, reason: reason.value.trim() || null };
          if (decision.value === 'suspend') body.until = Date.now() / 1000 + Number(days.value) * 86400;
          const done = await busy(decide, () => desk.decide(key, body));
          if (done) {
            showInfo(`Report decided: ${done.decision}.`);
            await refresh();
          }
        },
      },
      h('div', { class: 'row' }, field('Decision', decision), field('Kind of reason', category), daysField),
      field('Reason (told to the person)', reason),
      h('div', { class: 'row' }, decide),
    ),
  );
}

function appealItem(appeal) {
  const key = appeal.id;
  const reason = h('input', { type: 'text', id: `appeal-reason-${key}`, maxlength: 500, dir: 'auto' });
  const button = (outcome, text) =>
    h(
      'button',
      {
        type: 'button',
        class: outcome === 'reversed' ? 'primary' : '',
        dataset: { outcome },
        onclick: async (event) => {
          const done = await busy(event.currentTarget, () => desk.review(key, { outcome, reason: reason.value.trim() || null }));
          if (done) {
            showInfo(`Appeal ${done.outcome}.`);
            await refresh();
          }
        },
      },
      text,
    );
  return h(
    'li',
    { class: 'card appeal-item', dataset: { appeal: key } },
    h('p', {}, h('strong', {}, 'Appeal'), ' ', h('span', { class: 'muted small' }, formatWhen(appeal.created_at))),
    userText('p', appeal.text),
    field('Reason (told to the person)', reason),
    h('div', { class: 'row' }, button('upheld', 'Uphold the decision'), button('reversed', 'Reverse it')),
  );
}

async function refresh() {
  const [{ reports }, { appeals }] = await Promise.all([desk.reports(), desk.appeals()]);
  setText('#reports-count', `${reports.length} open`);
  setText('#appeals-count', `${appeals.length} open`);
  $('#reports').replaceChildren(...reports.map(reportItem));
  $('#appeals').replaceChildren(...appeals.map(appealItem));
}

async function main() {
  const user = await renderAccount();
  if (!user) {
    location.replace(`/login?next=${encodeURIComponent('/moderation')}`);
    return;
  }
  if (!user.moderator) {
    showError('Only site moderators can use this page.');
    return;
  }
  await refresh();
}

main().catch(showError);

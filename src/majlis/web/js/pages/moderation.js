// The site moderators' desk: open reports, oldest first, each decided once; open appeals,
// each decided by a moderator other than the one who made the decision.

import { desk } from '../api.js';
import { has, t } from '../i18n.js';
import { $, busy, formatWhen, h, renderAccount, setText, showError, showInfo, spaceUrl, userText } from '../ui.js';

const CATEGORIES = ['harassment', 'hate', 'spam', 'off_topic', 'other'];
const DECISIONS = ['dismiss', 'warn', 'remove', 'end', 'suspend'];

/** A server value (a category, a decision) in words, or the value itself when it has none. */
const named = (group, value) => (has(`desk.${group}.${value}`) ? t(`desk.${group}.${value}`) : String(value).replace('_', ' '));

function select(id, options, chosen) {
  return h('select', { id }, ...Object.entries(options).map(([value, text]) => h('option', { value, selected: value === chosen }, text)));
}

function field(label, control) {
  return h('div', {}, h('label', { for: control.id }, label), control);
}

function reportItem(report) {
  const key = report.id;
  const decisions = Object.fromEntries(DECISIONS.map((d) => [d, t(`desk.decide.${d}`)]));
  if (!report.user_id) delete decisions.remove;
  const decision = select(`decision-${key}`, decisions, 'dismiss');
  const category = select(`category-${key}`, Object.fromEntries(CATEGORIES.map((c) => [c, named('category', c)])), report.category);
  const reason = h('input', { type: 'text', id: `reason-${key}`, maxlength: 500, dir: 'auto' });
  const days = h('input', { type: 'number', id: `days-${key}`, min: 1, max: 366, value: 7 });
  const daysField = field(t('desk.report.days'), days);
  daysField.hidden = true;
  decision.addEventListener('change', () => {
    daysField.hidden = decision.value !== 'suspend';
  });
  const decide = h('button', { type: 'submit', class: 'primary' }, t('desk.report.decide'));
  const about =
    report.subject === 'speaker'
      ? t('desk.about.speaker', { id: String(report.user_id) })
      : report.subject === 'clip'
        ? t('desk.about.clip', { id: String(report.clip_id) })
        : t('desk.about.space');
  return h(
    'li',
    { class: 'card report-item', dataset: { report: key } },
    h(
      'p',
      {},
      h('strong', {}, t('desk.report.reported', { about, category: named('category', report.category) })),
      ' · ',
      h('a', { href: spaceUrl(report.space_id) }, t('desk.report.open_space')),
      ' ',
      h('span', { class: 'muted small' }, formatWhen(report.created_at)),
    ),
    report.text ? userText('p', report.text) : h('p', { class: 'muted small' }, t('desk.report.no_details')),
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
            showInfo(t('desk.report.decided', { decision: named('decided', done.decision) }));
            await refresh();
          }
        },
      },
      h('div', { class: 'row' }, field(t('desk.report.decision'), decision), field(t('desk.report.category'), category), daysField),
      field(t('desk.reason'), reason),
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
            showInfo(has(`desk.appeal.${done.outcome}`) ? t(`desk.appeal.${done.outcome}`) : `${done.outcome}.`);
            await refresh();
          }
        },
      },
      text,
    );
  return h(
    'li',
    { class: 'card appeal-item', dataset: { appeal: key } },
    h('p', {}, h('strong', {}, t('desk.appeal.label')), ' ', h('span', { class: 'muted small' }, formatWhen(appeal.created_at))),
    userText('p', appeal.text),
    field(t('desk.reason'), reason),
    h('div', { class: 'row' }, button('upheld', t('desk.appeal.uphold')), button('reversed', t('desk.appeal.reverse'))),
  );
}

async function refresh() {
  const [{ reports }, { appeals }] = await Promise.all([desk.reports(), desk.appeals()]);
  setText('#reports-count', t('desk.open_count', { count: reports.length }));
  setText('#appeals-count', t('desk.open_count', { count: appeals.length }));
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
    showError(t('desk.moderation.only_moderators'));
    return;
  }
  await refresh();
}

main().catch(showError);

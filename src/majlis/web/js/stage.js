// The speaker grid: who is on stage, who is talking, who is muted. Updated in place by
// user id so a keyboard user's focus on a card's buttons survives the once-a-second refresh.

import { pictures } from './api.js';
import { t } from './i18n.js';
import { h, initials, userText } from './ui.js';

const ROLE_NAMES = { host: t('listen.role.host'), cohost: t('listen.role.cohost'), speaker: t('listen.role.speaker') };
const ORDER = { host: 0, cohost: 1, speaker: 2 };

/** The speaker's picture over their initials once it has loaded; without one (404) the
 * initials stay. */
function showPicture(avatar, userId) {
  const img = new Image();
  img.alt = '';
  img.decoding = 'async';
  img.addEventListener('load', () => {
    avatar.dataset.picture = 'true';
    avatar.replaceChildren(img);
  });
  img.src = pictures.url(userId);
}

export class StageGrid {
  /** actions(speaker) → [buttons] or null; called again only when role or mute changes. */
  constructor(list, { actions = null, meId = null } = {}) {
    this.list = list;
    this.actions = actions;
    this.meId = meId;
    this.cards = new Map();
  }

  render(speakers) {
    const sorted = [...speakers].sort(
      (a, b) => (ORDER[a.role] ?? 9) - (ORDER[b.role] ?? 9) || a.display_name.localeCompare(b.display_name),
    );
    const seen = new Set();
    let previous = null;
    for (const speaker of sorted) {
      seen.add(speaker.user_id);
      let card = this.cards.get(speaker.user_id);
      if (!card) {
        card = this.create(speaker);
        this.cards.set(speaker.user_id, card);
      }
      this.update(card, speaker);
      const want = previous ? previous.nextSibling : this.list.firstChild;
      if (want !== card.node) this.list.insertBefore(card.node, want);
      previous = card.node;
    }
    for (const [id, card] of this.cards) {
      if (!seen.has(id)) {
        card.node.remove();
        this.cards.delete(id);
      }
    }
    if (!sorted.length && !this.list.querySelector('.empty')) {
      this.list.append(h('li', { class: 'empty' }, t('listen.stage.empty')));
    } else if (sorted.length) {
      this.list.querySelector('.empty')?.remove();
    }
  }

  create(speaker) {
    const avatar = h('span', { class: 'avatar', 'aria-hidden': 'true' });
    showPicture(avatar, speaker.user_id);
    // The name keeps its own direction; "(you)" stays on the interface's side of it.
    const nameText = userText('span', '');
    const you = h('span', {}, '');
    const name = h('span', { class: 'name' }, nameText, you);
    const role = h('span', { class: 'role' });
    const flags = h('span', { class: 'flags' });
    const actions = h('div', { class: 'actions' });
    const node = h(
      'li',
      { class: 'speaker', dataset: { userId: speaker.user_id } },
      avatar,
      name,
      role,
      flags,
      actions,
    );
    return { node, avatar, name, nameText, you, role, flags, actions, signature: null, flagKey: null };
  }

  update(card, speaker) {
    const me = speaker.user_id === this.meId ? t('listen.stage.you') : '';
    if (card.nameText.textContent !== speaker.display_name) card.nameText.textContent = speaker.display_name;
    if (card.you.textContent !== me) card.you.textContent = me;
    const initial = initials(speaker.display_name);
    if (!card.avatar.dataset.picture && card.avatar.textContent !== initial) card.avatar.textContent = initial;
    card.role.textContent = ROLE_NAMES[speaker.role] ?? speaker.role;
    const speaking = Boolean(speaker.speaking) && !speaker.muted;
    card.node.dataset.speaking = String(speaking);
    card.node.dataset.muted = String(Boolean(speaker.muted));
    const flag = speaker.muted ? ['🔇', t('listen.stage.muted')] : speaking ? ['🔊', t('listen.stage.speaking')] : null;
    const flagKey = flag ? flag[1] : '';
    if (card.flagKey !== flagKey) {
      card.flagKey = flagKey;
      card.flags.replaceChildren(...(flag ? [h('span', { 'aria-hidden': 'true' }, flag[0]), ` ${flag[1]}`] : []));
    }
    const signature = `${speaker.role}|${speaker.muted}`;
    if (this.actions && card.signature !== signature) {
      card.signature = signature;
      const focused = card.actions.contains(document.activeElement) ? document.activeElement.dataset.action : null;
      card.actions.replaceChildren(...(this.actions(speaker) ?? []));
      if (focused) card.actions.querySelector(`[data-action="${focused}"]`)?.focus();
    }
  }
}

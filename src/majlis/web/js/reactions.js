// Reaction buttons with everyone's tallies. Sending is optional (the studio only shows them).

import { REACTIONS, listening } from './api.js';
import { t } from './i18n.js';
import { formatCount, h } from './ui.js';

export class ReactionBar {
  /** send: async (emoji) → tallies; null for a read-only bar. */
  constructor(container, { send = null, onError = null } = {}) {
    this.send = send;
    this.onError = onError;
    this.buttons = new Map();
    this.blockedUntil = 0;
    const items = REACTIONS.map(([emoji, name]) => {
      const count = h('span', { class: 'count' }, '0');
      const button = h(
        send ? 'button' : 'span',
        {
          class: send ? 'reaction' : 'reaction button',
          type: send ? 'button' : undefined,
          dataset: { emoji },
          'aria-label': t('listen.reaction.label', { name, count: 0 }),
          onclick: send ? () => this.react(emoji, name) : undefined,
        },
        h('span', { class: 'emoji', 'aria-hidden': 'true' }, emoji),
        count,
      );
      this.buttons.set(emoji, { button, count, name });
      return button;
    });
    container.replaceChildren(...items);
  }

  update(tallies = {}) {
    for (const [emoji, { button, count, name }] of this.buttons) {
      const n = tallies[emoji] ?? 0;
      const text = formatCount(n);
      if (count.textContent !== text) {
        count.textContent = text;
        button.setAttribute('aria-label', t(this.send ? 'listen.reaction.send' : 'listen.reaction.label', { name, count: n }));
      }
    }
  }

  async react(emoji) {
    const entry = this.buttons.get(emoji);
    if (Date.now() < this.blockedUntil) return;
    entry.button.classList.add('sent');
    setTimeout(() => entry.button.classList.remove('sent'), 400);
    try {
      this.update(await this.send(emoji));
    } catch (error) {
      if (error.status === 429) this.blockedUntil = Date.now() + (error.retryAfterMs ?? 1000);
      this.onError?.(error.status === 429 ? { ...error, code: null, reason: t('listen.reaction.too_many') } : error);
    }
  }
}

/** A send function for a listener (anonymous id or logged in). */
export const sender = (spaceId, getToken) => async (emoji) =>
  (await listening.react(spaceId, emoji, await getToken())).reactions;

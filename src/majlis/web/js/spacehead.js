// The title block of a space page: title, host, description, state badge and counts.

import { t } from './i18n.js';
import { $, formatCount, formatWhen, setText } from './ui.js';

const STATE_NAMES = { live: t('listen.state.live'), scheduled: t('listen.state.scheduled'), ended: t('listen.state.ended') };

export function renderSpace(space) {
  setText('#space-title', space.title);
  setText('#space-host', `@${space.host_username}`);
  setText('#space-description', space.description || '');
  $('#space-description').hidden = !space.description;
  const badge = $('#space-state');
  if (badge) {
    let text = STATE_NAMES[space.state] ?? space.state;
    if (space.state === 'scheduled' && space.scheduled_for) text = t('listen.state.scheduled_for', { when: formatWhen(space.scheduled_for) });
    setText(badge, text);
    badge.className = `badge ${space.state}`;
  }
  document.title = t('listen.document_title', { title: space.title });
}

export function renderCounts(state) {
  setText('#listener-count', formatCount(state.listener_count));
  setText('#peak-count', formatCount(state.peak_listeners));
  // Only a live space has anyone on stage: an upcoming or ended one lists its host (and
  // whoever was last up) without their being there.
  setText('#stage-count', formatCount(state.space.state === 'live' ? state.speakers.length : 0));
}

/** The connection line: a coloured dot plus words (data-state for tests and styles). */
export function showConnection(state, text) {
  const node = $('#connection');
  if (!node) return;
  node.dataset.state = state;
  node.hidden = !text;
  setText(node, text);
}

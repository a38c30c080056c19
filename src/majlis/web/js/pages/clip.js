// The clip page is rendered by the server; this adds what needs a script: reporting it, and
// the server's English words (the page's title, the clip's description, the transcript's
// heading) in the reader's language.

import { api } from '../api.js';
import { lang, t } from '../i18n.js';
import { attachReport } from '../report.js';
import { $, formatClock, setText } from '../ui.js';

const button = $('#report-button');
if (button?.dataset.clipId) attachReport({ clipId: button.dataset.clipId });

async function translateServerWords(clipId) {
  document.title = t('pages.clip.title', { title: $('#clip-title').textContent });
  setText('#clip-transcript-heading', t('pages.clip.transcript'));
  const clip = await api.get(`/clips/${encodeURIComponent(clipId)}`, { retries: 1 });
  setText('#clip-description', t('pages.clip.description', { duration: Math.round(clip.duration), start: formatClock(clip.start) }));
}

// In English the server's words are the page's already.
if (lang !== 'en' && button?.dataset.clipId) translateServerWords(button.dataset.clipId).catch(() => undefined);

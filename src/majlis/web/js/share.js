// A share control: the system's share sheet where the browser has one (Web Share API,
// phones mostly), else the link copied to the clipboard, else the link shown selected to
// copy by hand. What happened is said beside the button.

import { t } from './i18n.js';
import { $, setText } from './ui.js';

async function copy(url) {
  try {
    await navigator.clipboard.writeText(url);
    return true;
  } catch {
    return false; // no permission, or not a secure context
  }
}

/** Wire `#share-button` (and `#share-status`) to share `url` with `title`. */
export function attachShare({ url, title }) {
  const button = $('#share-button');
  if (!button) return;
  button.hidden = false;
  button.addEventListener('click', async () => {
    if (navigator.share) {
      try {
        await navigator.share({ title, url });
        setText('#share-status', '');
        return;
      } catch (error) {
        if (error?.name === 'AbortError') return; // the person closed the sheet
      }
    }
    if (await copy(url)) {
      setText('#share-status', t('listen.share.copied'));
      return;
    }
    const field = $('#share-link');
    field.value = url;
    field.hidden = false;
    field.select();
    setText('#share-status', t('listen.share.copy'));
  });
}

// Create a space, live now or scheduled; then go to its studio.

import { spaces } from '../api.js';
import { t } from '../i18n.js';
import { $, busy, renderAccount, showError, spaceUrl } from '../ui.js';

function localInputValue(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

async function main() {
  const user = await renderAccount();
  if (!user) {
    location.replace(`/login?next=${encodeURIComponent('/new')}`);
    return;
  }
  const form = $('#new-form');
  const whenFields = $('#when-fields');
  const at = $('#scheduled_for');
  const inAnHour = new Date(Date.now() + 3600_000);
  inAnHour.setMinutes(0, 0, 0);
  at.value = localInputValue(inAnHour);
  at.min = localInputValue(new Date());
  $('#tz-hint').textContent = t('studio.new.local_time_zone', { zone: Intl.DateTimeFormat().resolvedOptions().timeZone });
  for (const radio of form.querySelectorAll('input[name=when]')) {
    radio.addEventListener('change', () => {
      whenFields.hidden = form.elements.when.value !== 'later';
    });
  }
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const title = $('#title').value.trim();
    if (!title) {
      showError(t('studio.new.need_title'));
      $('#title').focus();
      return;
    }
    const body = {
      title,
      description: $('#description').value.trim(),
      visibility: form.elements.visibility.value,
      recording: $('#recording').checked,
    };
    if (form.elements.when.value === 'later') {
      const when = new Date(at.value);
      if (Number.isNaN(when.getTime()) || when.getTime() < Date.now()) {
        showError(t('studio.new.future'));
        at.focus();
        return;
      }
      body.scheduled_for = when.getTime() / 1000;
    }
    const space = await busy($('#create'), () => spaces.create(body));
    if (space) location.assign(spaceUrl(space.id, 'studio'));
  });
}

main().catch(showError);

// Sign up and log in (one module; the form's data-mode says which). The submit handler is
// bound before anything is fetched, so the first tap counts however slow the server is.

import { login, register } from '../api.js';
import { t } from '../i18n.js';
import { $, busy, param, renderAccount, safeNext, showError } from '../ui.js';

async function main() {
  const form = $('#auth-form');
  const mode = form.dataset.mode;
  const next = safeNext(param('next'));
  const other = $('#other-link');
  if (next !== '/') other.href = `${other.pathname}?next=${encodeURIComponent(next)}`;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const username = $('#username').value.trim();
    const password = $('#password').value;
    const problem = check(mode, username, password);
    if (problem) {
      showError(problem);
      return;
    }
    const done = await busy(form.querySelector('button[type=submit]'), async () => {
      if (mode === 'signup') {
        await register(username, password, $('#display_name').value.trim(), $('#email').value.trim());
      } else {
        await login(username, password);
      }
      return true;
    });
    if (done) location.assign(next);
  });
  // The form works from here on: a tap before /auth/me answers is not lost. (The button
  // stays disabled until now, so a tap before this script ran cannot submit the form
  // natively, with the password in the URL.)
  form.querySelector('button[type=submit]').disabled = false;
  const user = await renderAccount();
  if (user) location.replace(next);
}

function check(mode, username, password) {
  if (!username) return t('pages.auth.enter_username');
  if (!password) return t('pages.auth.enter_password');
  if (mode === 'signup') {
    if (!/^[A-Za-z0-9_]{3,32}$/.test(username)) return t('pages.auth.username_rule');
    if (password.length < 8) return t('pages.auth.password_rule');
  }
  return null;
}

main().catch(showError);

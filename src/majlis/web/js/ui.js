// DOM helpers shared by every page. Text always goes in as text nodes (never parsed as HTML), and
// anything a person typed gets dir="auto" so Arabic and other right-to-left text reads right.

import { logout, me, pictures } from './api.js';
import { dateTime, errorText, lang, number, t } from './i18n.js';

/** h('button', {class: 'primary', onclick: fn, 'aria-label': 'x'}, 'text', child) */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      node.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      node.className = value;
    } else if (key === 'dataset') {
      Object.assign(node.dataset, value);
    } else if (value === true) {
      node.setAttribute(key, '');
    } else {
      node.setAttribute(key, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Text a person typed (titles, names, descriptions): its own direction. */
export const userText = (tag, text, attrs = {}) => h(tag, { dir: 'auto', ...attrs }, text ?? '');

export const $ = (selector, root = document) => root.querySelector(selector);

export function setText(selector, text) {
  const node = typeof selector === 'string' ? $(selector) : selector;
  if (node && node.textContent !== String(text)) node.textContent = String(text);
}

export function show(node, visible = true) {
  const el = typeof node === 'string' ? $(node) : node;
  if (el) el.hidden = !visible;
}

// Alerts: one role="alert" region per page for errors, one role="status" for news. --------

/**
 * What a statement of reasons (a 'notice' event, or GET /api/v1/notices) tells the person it
 * concerns, in a sentence or three: what was done, why, and how to contest it.
 */
export function noticeText(notice) {
  const why = notice.text ? t('common.notice.because', { text: notice.text }) : t('common.notice.stop');
  return `${noticeDone(notice)}${why} ${noticeAppeal(notice)}`;
}

const BY_HOST = { ban: 'common.notice.host_ban', remove: 'common.notice.host_remove' };
const BY_MODERATOR = {
  ban: 'common.notice.mod_ban',
  warn: 'common.notice.mod_warn',
  suspend: 'common.notice.mod_suspend',
  end: 'common.notice.mod_end',
};

/** What was done, in a sentence without its reason. */
export function noticeDone(notice) {
  const terms = notice.ground === 'terms_of_service';
  const key = (terms ? BY_MODERATOR : BY_HOST)[notice.action];
  return key ? t(key) : t('common.notice.other', { action: notice.action });
}

/** How to contest it: the server's sentence in English, the catalogue's in other languages. */
export function noticeAppeal(notice) {
  if (lang === 'en') return notice.appeal;
  return t(notice.ground === 'terms_of_service' ? 'common.notice.appeal_terms' : 'common.notice.appeal_host');
}

export function showError(error, where = '#alert') {
  const node = $(where);
  if (!node) return;
  const reason = errorText(error);
  node.classList.remove('info');
  node.textContent = reason;
  node.hidden = false;
}

export function showInfo(text, where = '#alert') {
  const node = $(where);
  if (!node) return;
  node.classList.add('info');
  node.textContent = text;
  node.hidden = false;
}

export function clearAlert(where = '#alert') {
  const node = $(where);
  if (node) {
    node.hidden = true;
    node.textContent = '';
  }
}

/** Run an action from a button: disable it meanwhile, show the error if it fails. */
export async function busy(button, action) {
  if (button) button.disabled = true;
  try {
    clearAlert();
    return await action();
  } catch (error) {
    showError(error);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

// Formatting ---------------------------------------------------------------------------

export function formatCount(n) {
  return number(n, { notation: n >= 10000 ? 'compact' : 'standard' });
}

export const formatWhen = (unixSeconds) => dateTime(unixSeconds);

export function formatClock(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.floor(seconds % 60);
  const m = Math.floor((seconds / 60) % 60);
  const hours = Math.floor(seconds / 3600);
  // Digits in the reader's numbering system (Arabic-Indic for ar-EG), never grouped.
  const digits = (n, width = 1) => number(n, { minimumIntegerDigits: width, useGrouping: false });
  const mm = digits(m, hours ? 2 : 1);
  return `${hours ? `${digits(hours)}:` : ''}${mm}:${digits(s, 2)}`;
}

export function formatWait(ms) {
  const seconds = Math.max(1, Math.round(ms / 1000));
  if (seconds < 60) return t('common.wait.seconds', { count: seconds });
  return t('common.wait.minutes', { count: Math.round(seconds / 60) });
}

export function initials(name) {
  const letters = Array.from((name || '?').trim());
  return (letters[0] || '?').toUpperCase();
}

// Location -----------------------------------------------------------------------------

/** The space id in /spaces/{id}[/studio|/replay]. */
export function spaceIdFromPath() {
  const match = /^\/spaces\/([^/]+)/.exec(location.pathname);
  return match ? decodeURIComponent(match[1]) : null;
}

export const flag = (name) => new URLSearchParams(location.search).has(name);
export const param = (name) => new URLSearchParams(location.search).get(name);

/** A same-site path to go to after logging in; anything else becomes "/". */
export function safeNext(value) {
  if (typeof value !== 'string' || !value.startsWith('/') || value.startsWith('//') || value.includes('\\')) {
    return '/';
  }
  return value;
}

export const spaceUrl = (id, page = '') => `/spaces/${encodeURIComponent(id)}${page ? `/${page}` : ''}`;

// Header -------------------------------------------------------------------------------

/** Fill the account area of the header; returns the logged-in user or null. */
const PICTURE_MAX_BYTES = 64 * 1024;

/** Send the chosen picture; the server checks it again, and says why when it refuses. */
async function uploadPicture(input) {
  const file = input.files?.[0];
  input.value = '';
  if (!file) return;
  if (file.size > PICTURE_MAX_BYTES) {
    showError(t('common.picture.too_big', { size: Math.ceil(file.size / 1024) }));
    return;
  }
  try {
    clearAlert();
    await pictures.put(file);
    showInfo(t('common.picture.saved'));
  } catch (error) {
    showError(error);
  }
}

export async function renderAccount() {
  const nav = $('#account');
  let user = null;
  try {
    user = await me();
  } catch {
    user = null;
  }
  if (!nav) return user;
  const here = location.pathname + location.search;
  const next = `?next=${encodeURIComponent(here)}`;
  if (user) {
    nav.replaceChildren(
      h('span', { class: 'who' }, h('span', { class: 'who-prefix' }, t('common.signed_in_as')), userText('strong', user.display_name)),
      h('a', { class: 'button primary small-button', href: '/new' }, t('common.new_space')),
      ...(user.moderator
        ? [
            h('a', { class: 'button small-button', href: '/moderation', id: 'moderation-link' }, t('common.moderation')),
            h('a', { class: 'button small-button', href: '/admin', id: 'admin-link' }, t('common.operator')),
          ]
        : []),
      h('a', { class: 'button small-button', href: '/notices', id: 'notices-link' }, t('common.notices')),
      h('label', { class: 'button small-button', for: 'picture-input', title: t('common.picture.hint') }, t('common.picture')),
      h('input', {
        type: 'file',
        id: 'picture-input',
        class: 'visually-hidden',
        accept: 'image/png,image/jpeg,image/webp',
        onchange: (event) => uploadPicture(event.currentTarget),
      }),
      h(
        'button',
        {
          type: 'button',
          class: 'small-button',
          id: 'logout',
          onclick: async () => {
            await logout().catch(() => undefined);
            location.assign('/');
          },
        },
        t('common.log_out'),
      ),
    );
    if (user.suspended_until) {
      const until = formatWhen(user.suspended_until);
      showInfo(t('common.suspended_until', { until }));
    }
    // Loaded for people logged in only; a dynamic import also keeps ui.js out of a cycle.
    import('./notifications.js')
      .then((module) => module.mountNotifications(nav))
      .catch(() => undefined);
  } else {
    nav.replaceChildren(
      h('a', { class: 'button small-button', href: `/login${next}` }, t('common.log_in')),
      h('a', { class: 'button primary small-button', href: `/signup${next}` }, t('common.sign_up')),
    );
  }
  return user;
}

/** Wire a <dialog> to confirm an action; resolves true when confirmed. */
export function confirmDialog(dialog) {
  return new Promise((resolve) => {
    const onClose = () => {
      dialog.removeEventListener('close', onClose);
      resolve(dialog.returnValue === 'confirm');
    };
    dialog.returnValue = '';
    dialog.addEventListener('close', onClose);
    dialog.showModal();
  });
}

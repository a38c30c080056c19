// DOM helpers shared by every page. Text always goes in as text nodes (never parsed as HTML), and
// anything a person typed gets dir="auto" so Arabic and other right-to-left text reads right.

import { logout, me, pictures } from './api.js';

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
  const why = notice.text ? `: “${notice.text}”.` : '.';
  return `${noticeDone(notice)}${why} ${notice.appeal}`;
}

const BY_HOST = {
  ban: 'A host removed you from this space and banned you',
  remove: 'A host removed you from this space',
};
const BY_MODERATOR = {
  ban: 'A site moderator removed you from this space',
  warn: 'A site moderator warned you',
  suspend: 'A site moderator suspended your account',
  end: 'A site moderator ended your space',
};

/** What was done, in a sentence without its reason. */
export function noticeDone(notice) {
  const table = notice.ground === 'terms_of_service' ? BY_MODERATOR : BY_HOST;
  return table[notice.action] ?? `A decision about you: ${notice.action}`;
}

export function showError(error, where = '#alert') {
  const node = $(where);
  if (!node) return;
  const reason = error?.reason || error?.message || String(error);
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
  return new Intl.NumberFormat(undefined, { notation: n >= 10000 ? 'compact' : 'standard' }).format(n);
}

export function formatWhen(unixSeconds) {
  return new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' }).format(
    new Date(unixSeconds * 1000),
  );
}

export function formatClock(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.floor(seconds % 60);
  const m = Math.floor((seconds / 60) % 60);
  const hours = Math.floor(seconds / 3600);
  const mm = hours ? String(m).padStart(2, '0') : String(m);
  return `${hours ? `${hours}:` : ''}${mm}:${String(s).padStart(2, '0')}`;
}

export function formatWait(ms) {
  const seconds = Math.max(1, Math.round(ms / 1000));
  if (seconds < 60) return `about ${seconds} second${seconds === 1 ? '' : 's'}`;
  const minutes = Math.round(seconds / 60);
  return `about ${minutes} minute${minutes === 1 ? '' : 's'}`;
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
    showError(`A picture is at most 64 KiB; this one is ${Math.ceil(file.size / 1024)} KiB.`);
    return;
  }
  try {
    clearAlert();
    await pictures.put(file);
    showInfo('Your picture is saved. People see it on stage.');
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
      h('span', { class: 'who' }, h('span', { class: 'who-prefix' }, 'Signed in as '), userText('strong', user.display_name)),
      h('a', { class: 'button primary small-button', href: '/new' }, 'New space'),
      ...(user.moderator
        ? [
            h('a', { class: 'button small-button', href: '/moderation', id: 'moderation-link' }, 'Moderation'),
            h('a', { class: 'button small-button', href: '/admin', id: 'admin-link' }, 'Operator'),
          ]
        : []),
      h('a', { class: 'button small-button', href: '/notices', id: 'notices-link' }, 'Notices'),
      h('label', { class: 'button small-button', for: 'picture-input', title: 'A PNG, JPEG or WebP up to 64 KiB' }, 'Picture'),
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
        'Log out',
      ),
    );
    if (user.suspended_until) {
      const until = formatWhen(user.suspended_until);
      showInfo(`Your account is suspended until ${until}. Notices says why and how to appeal.`);
    }
    // Loaded for people logged in only; a dynamic import also keeps ui.js out of a cycle.
    import('./notifications.js')
      .then((module) => module.mountNotifications(nav))
      .catch(() => undefined);
  } else {
    nav.replaceChildren(
      h('a', { class: 'button small-button', href: `/login${next}` }, 'Log in'),
      h('a', { class: 'button primary small-button', href: `/signup${next}` }, 'Sign up'),
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

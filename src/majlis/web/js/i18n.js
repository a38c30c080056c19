// Words, numbers and dates in the reader's language. lang.js has already chosen the language
// (on <html lang>); this module holds the catalogues, puts the page's static words in, and
// gives every other module t(), the Intl formatters, and the language switch.
//
// Catalogues are flat maps of key → message, one per language (locales/en.js, locales/ar.js,
// each split by area). A message may hold {name} placeholders; a message that depends on a
// count is an object of plural forms ({zero, one, two, few, many, other}: Arabic uses all six)
// chosen by Intl.PluralRules. HTML marks its words with data-i18n="key" (the text) and
// data-i18n-attr="attr:key;attr:key" (placeholders, labels, titles).

import ar from './locales/ar.js';
import en from './locales/en.js';

const LANGUAGES = {
  en: { name: 'English', dir: 'ltr', messages: en },
  ar: { name: 'العربية', dir: 'rtl', messages: ar },
};

const STORE_KEY = 'majlis.lang';

// Without a page (a module under `node --test`) the language is English.
const page = globalThis.document;
const chosen = page?.documentElement.lang;
export const lang = LANGUAGES[chosen] ? chosen : 'en';
const messages = LANGUAGES[lang].messages;
const plurals = new Intl.PluralRules(lang);

// Numbers and dates follow the reader's region where the browser names one for this
// language: CLDR writes 'ar' with Latin digits, 'ar-EG' and 'ar-SA' with Arabic-Indic ones.
const browserTags = globalThis.navigator?.languages ?? [];
const locale = browserTags.find((tag) => tag.toLowerCase().split('-')[0] === lang) ?? lang;

export const has = (key) => key in messages || key in en;

/** The message `key` in the reader's language, with {placeholders} filled from `params`. */
export function t(key, params = {}) {
  let message = messages[key] ?? en[key];
  if (message === undefined) return key;
  if (typeof message === 'object') {
    message = message[plurals.select(Number(params.count ?? 0))] ?? message.other;
  }
  return message.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? shown(params[name]) : whole));
}

/** The message `key` as parts to append to an element, with `nodes[name]` where {name}
 * stands: a person's name as its own element (its own direction), a count updated in place. */
export function tParts(key, nodes, params = {}) {
  const parts = t(key, params).split(/\{(\w+)\}/); // odd places: placeholders left by t()
  return parts.map((part, i) => (i % 2 ? nodes[part] ?? `{${part}}` : part)).filter((part) => part !== '');
}

const shown = (value) => (typeof value === 'number' ? number(value) : String(value));

// Formatters -----------------------------------------------------------------------------------

export const number = (n, options = {}) => new Intl.NumberFormat(locale, options).format(n);

export function dateTime(unixSeconds, options = { dateStyle: 'medium', timeStyle: 'short' }) {
  return new Intl.DateTimeFormat(locale, options).format(new Date(unixSeconds * 1000));
}

export const clockTime = (date = new Date()) => new Intl.DateTimeFormat(locale, { timeStyle: 'medium' }).format(date);

/** The error a person sees: the server's stable `error` code in their language, or the
 * server's own sentence (English) where no translation of the code exists. In English the
 * server's sentence is kept: it is the most specific. */
export function errorText(error) {
  const code = error?.code;
  if (lang !== 'en' && code && has(`error.${code}`)) return t(`error.${code}`);
  return error?.reason || error?.message || String(error);
}

// The page ----------------------------------------------------------------------------------------

/** Put the catalogue's words into `root`'s marked elements. */
function translate(root = document) {
  for (const node of root.querySelectorAll('[data-i18n]')) {
    node.textContent = t(node.dataset.i18n);
  }
  for (const node of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of node.dataset.i18nAttr.split(';')) {
      const [attr, key] = pair.split(':').map((part) => part.trim());
      if (attr && key) node.setAttribute(attr, t(key));
    }
  }
}

function setLanguage(code) {
  if (!LANGUAGES[code]) return;
  try {
    localStorage.setItem(STORE_KEY, code);
  } catch {
    return; // storage blocked: the browser's language stays the choice
  }
  location.reload();
}

/** The language switch, in the page's header. */
function languageSwitch() {
  const header = document.querySelector('header.site');
  if (!header || header.querySelector('#language')) return;
  const select = document.createElement('select');
  select.id = 'language';
  select.className = 'language';
  select.setAttribute('aria-label', t('common.language'));
  for (const [code, { name }] of Object.entries(LANGUAGES)) {
    const option = new Option(name, code, code === lang, code === lang);
    option.lang = code;
    select.append(option);
  }
  select.addEventListener('change', () => setLanguage(select.value));
  header.append(select);
}

if (page) {
  translate();
  languageSwitch();
  page.documentElement.classList.remove('i18n-pending');
}

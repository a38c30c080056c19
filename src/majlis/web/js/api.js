// The JSON API client: one place for the base path, auth, errors, retries and backoff.
//
// Errors from the server are {error, reason}; they become ApiError with the reason a person
// can read. Overload answers (429, 503) and lost connections are retried with jittered
// exponential backoff (full jitter) inside the page's retry budget, honouring the server's
// Retry-After-Ms (retry.js).

import { t } from './i18n.js';
import { budget, retryDelay, sleep } from './retry.js';

export { sleep };

const BASE = '/api/v1';
const ANON_KEY = 'majlis.anonymous';

export class ApiError extends Error {
  constructor(status, code, reason, retryAfterMs = null) {
    super(reason);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.reason = reason;
    this.retryAfterMs = retryAfterMs;
  }
}

/** Jittered exponential backoff: a random wait in [c/2, c] where c = min(cap, base * 2^attempt).
 * Kept for mic.js; the other retry paths use retry.js (full jitter and the budget). */
export function backoff(attempt, { base = 500, cap = 30000 } = {}) {
  const ceiling = Math.min(cap, base * 2 ** attempt);
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

const RETRYABLE = new Set([0, 408, 429, 502, 503, 504]);

/**
 * request('POST', '/spaces', {body}) → parsed JSON (or null for 204).
 * Options: body (sent as JSON), raw ({data, type}: a Blob sent as it is), token (Bearer, e.g. an anonymous listener id), retries (default 3 for GET,
 * 0 for writes unless asked), signal, query, url (an absolute URL to use instead of the
 * API's own, e.g. the state document on the edge; no cookies go there).
 */
export async function request(method, path, options = {}) {
  const { body, token, signal, query } = options;
  const retries = options.retries ?? (method === 'GET' ? 3 : 0);
  let url = options.url ?? BASE + path;
  if (query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== '') params.set(key, value);
    }
    const text = params.toString();
    if (text) url += `?${text}`;
  }
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (options.raw) headers['Content-Type'] = options.raw.type;
  if (token) headers.Authorization = `Bearer ${token}`;
  budget.request(); // the first attempt; every retry below is taken from the budget
  for (let attempt = 0; ; attempt += 1) {
    let error;
    try {
      const response = await fetch(url, {
        method,
        headers,
        body: options.raw ? options.raw.data : body === undefined ? undefined : JSON.stringify(body),
        credentials: options.url ? 'omit' : 'same-origin',
        signal,
        keepalive: options.keepalive ?? false,
      });
      if (response.ok) return await parse(response);
      error = await toError(response);
    } catch (caught) {
      if (caught?.name === 'AbortError') throw caught;
      error = new ApiError(0, 'network', t('common.network'));
    }
    if (attempt >= retries || !RETRYABLE.has(error.status) || !budget.tryRetry()) throw error;
    await sleep(retryDelay(attempt, { retryAfterMs: error.retryAfterMs, base: 500, cap: 30000 }), signal);
  }
}

async function parse(response) {
  if (response.status === 204) return null;
  const type = response.headers.get('content-type') || '';
  if (!type.includes('json')) return response.text();
  const data = await response.json();
  // 202 answers (the waiting room) carry their status in the body; keep the HTTP status too.
  if (data && typeof data === 'object') Object.defineProperty(data, 'httpStatus', { value: response.status });
  return data;
}

async function toError(response) {
  let code = 'http_error';
  let reason = t('common.http_error', { status: response.status });
  let retryAfterMs = null;
  try {
    const data = await response.json();
    if (data?.reason) reason = data.reason;
    if (data?.error) code = data.error;
    if (Number.isFinite(data?.retry_after_ms)) retryAfterMs = data.retry_after_ms;
  } catch {
    // not JSON: keep the generic reason
  }
  const header = response.headers.get('retry-after-ms') ?? null;
  if (retryAfterMs === null && header !== null && Number.isFinite(Number(header))) {
    retryAfterMs = Number(header);
  } else if (retryAfterMs === null && response.headers.get('retry-after')) {
    const seconds = Number(response.headers.get('retry-after'));
    if (Number.isFinite(seconds)) retryAfterMs = seconds * 1000;
  }
  return new ApiError(response.status, code, reason, retryAfterMs);
}

export const api = {
  get: (path, options) => request('GET', path, options),
  post: (path, body, options = {}) => request('POST', path, { ...options, body }),
  put: (path, body, options = {}) => request('PUT', path, { ...options, body }),
  patch: (path, body, options = {}) => request('PATCH', path, { ...options, body }),
  del: (path, options) => request('DELETE', path, options),
};

// Accounts -------------------------------------------------------------------------------

let mePromise = null;

/** The logged-in user, or null. Asked once per page. */
export function me() {
  mePromise ??= api.get('/auth/me', { retries: 1 }).catch((error) => {
    if (error.status === 401) return null;
    throw error;
  });
  return mePromise;
}

export async function register(username, password, displayName, email) {
  const body = { username, password };
  if (displayName) body.display_name = displayName;
  if (email) body.email = email;
  const session = await api.post('/auth/register', body, { retries: 2 });
  mePromise = Promise.resolve(session.user);
  return session;
}

export async function login(username, password) {
  const session = await api.post('/auth/login', { username, password }, { retries: 2 });
  mePromise = Promise.resolve(session.user);
  return session;
}

export async function logout() {
  try {
    await api.post('/auth/logout', undefined, { retries: 1 });
  } finally {
    mePromise = Promise.resolve(null);
  }
}

/**
 * A token for listener actions: none when logged in (the session cookie does it), else an
 * anonymous listener id kept in this browser until it expires.
 */
export async function listenerToken() {
  if (await me()) return undefined;
  try {
    const saved = JSON.parse(localStorage.getItem(ANON_KEY) || 'null');
    if (saved && saved.expires_at * 1000 > Date.now() + 60000) return saved.token;
  } catch {
    // storage unavailable or corrupt: ask for a new id
  }
  const session = await api.post('/auth/anonymous', undefined, { retries: 3 });
  try {
    localStorage.setItem(ANON_KEY, JSON.stringify({ token: session.token, expires_at: session.expires_at }));
  } catch {
    // private mode: keep it for this page only
  }
  return session.token;
}

// Spaces ---------------------------------------------------------------------------------

export const spaces = {
  list: (query) => api.get('/spaces', { query }),
  get: (id) => api.get(`/spaces/${enc(id)}`),
  create: (body) => api.post('/spaces', body),
  start: (id) => api.post(`/spaces/${enc(id)}/start`),
  end: (id) => api.post(`/spaces/${enc(id)}/end`),
  edit: (id, changes) => api.patch(`/spaces/${enc(id)}`, changes),
  replay: (id) => api.get(`/spaces/${enc(id)}/replay`),
  deleteReplay: (id) => api.del(`/spaces/${enc(id)}/replay`),
  captions: (id, on) => api.put(`/spaces/${enc(id)}/captions`, { on }),
  state: (id, options) => api.get(`/spaces/${enc(id)}/state`, options),
  remind: (id, on) => (on ? api.put(`/spaces/${enc(id)}/reminder`) : api.del(`/spaces/${enc(id)}/reminder`)),
  calendarUrl: (id) => `${BASE}/spaces/${enc(id)}/calendar.ics`,
  participants: (id) => api.get(`/spaces/${enc(id)}/participants`),
  guests: (id) => api.get(`/spaces/${enc(id)}/guests`),
  addGuest: (id, username) => api.post(`/spaces/${enc(id)}/guests`, { username }),
  removeGuest: (id, userId) => api.del(`/spaces/${enc(id)}/guests/${enc(userId)}`),
};

export const speaking = {
  requests: (id) => api.get(`/spaces/${enc(id)}/requests`),
  ask: (id) => api.post(`/spaces/${enc(id)}/requests`),
  withdraw: (id) => api.del(`/spaces/${enc(id)}/requests`),
  approve: (id, userId) => api.post(`/spaces/${enc(id)}/requests/${enc(userId)}/approve`),
  decline: (id, userId) => api.post(`/spaces/${enc(id)}/requests/${enc(userId)}/decline`),
  invite: (id, username) => api.post(`/spaces/${enc(id)}/invites`, { username }),
  acceptInvite: (id) => api.post(`/spaces/${enc(id)}/invites/accept`),
  declineInvite: (id) => api.post(`/spaces/${enc(id)}/invites/decline`),
  stepDown: (id) => api.post(`/spaces/${enc(id)}/step-down`),
  demote: (id, userId) => api.post(`/spaces/${enc(id)}/participants/${enc(userId)}/demote`),
  mute: (id, userId) => api.post(`/spaces/${enc(id)}/participants/${enc(userId)}/mute`),
  unmute: (id, userId) => api.post(`/spaces/${enc(id)}/participants/${enc(userId)}/unmute`),
  remove: (id, userId, ban, reason = '') =>
    api.post(`/spaces/${enc(id)}/participants/${enc(userId)}/remove`, {
      ban: Boolean(ban),
      ...(reason.trim() ? { reason: reason.trim() } : {}),
    }),
  addCohost: (id, userId) => api.post(`/spaces/${enc(id)}/cohosts`, { user_id: userId }),
  removeCohost: (id, userId) => api.del(`/spaces/${enc(id)}/cohosts/${enc(userId)}`),
  transferHost: (id, userId) => api.post(`/spaces/${enc(id)}/host`, { user_id: userId }),
  offer: (id, sdp) => api.post(`/spaces/${enc(id)}/rtc/offer`, { sdp, type: 'offer' }, { retries: 2 }),
};

export const notices = {
  mine: () => api.get('/notices'),
  appeal: (id, text) => api.post(`/notices/${encodeURIComponent(id)}/appeal`, { text }),
};

// Site moderation: reports anyone files, appeals, and the moderators' desk. -------------

export const reports = {
  file: (body) => api.post('/reports', body),
};

export const appeals = {
  mine: () => api.get('/appeals'),
};

export const desk = {
  reports: () => api.get('/moderation/reports'),
  decide: (id, body) => api.post(`/moderation/reports/${encodeURIComponent(id)}/decision`, body),
  appeals: () => api.get('/moderation/appeals'),
  review: (id, body) => api.post(`/moderation/appeals/${encodeURIComponent(id)}/decision`, body),
};

// The badge polls: one try, its next poll is the retry.
export const notifications = {
  mine: (limit) => api.get('/notifications', { query: { limit }, retries: 0 }),
  read: (upTo) => api.post('/notifications/read', upTo ? { up_to: upTo } : {}),
};

export const listening = {
  join: (id, ticket, token) =>
    api.post(`/spaces/${enc(id)}/join`, ticket ? { ticket } : {}, { token, retries: 4 }),
  heartbeat: (id, playbackToken, token) =>
    api.post(`/spaces/${enc(id)}/heartbeat`, { playback_token: playbackToken }, { token, retries: 2 }),
  leave: (id, token) => api.post(`/spaces/${enc(id)}/leave`, undefined, { token, keepalive: true }),
  react: (id, emoji, token) => api.post(`/spaces/${enc(id)}/reactions`, { emoji }, { token }),
  // Hosts and co-hosts: who is listening (names of signed-in listeners, a count of the rest).
  who: (id) => api.get(`/spaces/${enc(id)}/listeners`, { retries: 0 }),
};

export const REACTIONS = [
  ['👏', t('common.reaction.clap')],
  ['❤️', t('common.reaction.love')],
  ['😂', t('common.reaction.laugh')],
  ['🔥', t('common.reaction.fire')],
  ['💯', t('common.reaction.hundred')],
  ['🙏', t('common.reaction.thanks')],
  ['👍', t('common.reaction.thumbs_up')],
  ['😮', t('common.reaction.wow')],
];

function enc(value) {
  return encodeURIComponent(value);
}

// Users' pictures: a PNG, JPEG or WebP up to 64 KiB; 404 from avatarUrl means "none".
export const pictures = {
  put: (file) => request('PUT', '/auth/me/avatar', { raw: { data: file, type: file.type } }),
  remove: () => request('DELETE', '/auth/me/avatar'),
  url: (userId) => `${BASE}/users/${encodeURIComponent(userId)}/avatar`,
};

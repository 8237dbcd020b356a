// The viewer shell: login, the customer's cameras and activity, the language switch, logout.
// User text (names, addresses) is only ever assigned to textContent, never parsed as HTML.
import { LANGS, t } from './i18n.js';

const $ = (id) => document.getElementById(id);
const state = { lang: initialLang(), me: null };

function initialLang() {
  const saved = localStorage.getItem('eyeward.lang');
  if (LANGS.includes(saved)) return saved;
  return (navigator.language || '').toLowerCase().startsWith('ja') ? 'ja' : 'en';
}

async function api(method, path, body) {
  const init = { method, headers: {}, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  const data = resp.status === 204 ? null : await resp.json().catch(() => null);
  return { resp, data };
}

function applyLang() {
  document.documentElement.lang = state.lang;
  for (const el of document.querySelectorAll('[data-i18n]')) {
    el.textContent = t(state.lang, el.dataset.i18n);
  }
  for (const el of document.querySelectorAll('[data-i18n-label]')) {
    el.setAttribute('aria-label', t(state.lang, el.dataset.i18nLabel));
  }
  for (const b of document.querySelectorAll('[data-lang]')) {
    b.setAttribute('aria-pressed', String(b.dataset.lang === state.lang));
  }
}

async function setLang(lang) {
  state.lang = lang;
  localStorage.setItem('eyeward.lang', lang);
  applyLang();
  if (state.me) {
    await api('PATCH', '/api/me', { lang });
    state.me.lang = lang;
    await render();
  }
}

function show(view) {
  for (const id of ['login-view', 'cameras-view', 'operator-view']) $(id).hidden = id !== view;
  const loggedIn = view !== 'login-view';
  $('logout').hidden = !loggedIn;
  $('who').hidden = !loggedIn;
}

function renderCameras(cameras) {
  const list = $('cameras');
  list.replaceChildren();
  $('cameras-empty').hidden = cameras.length > 0;
  const tpl = $('camera-tile');
  for (const cam of cameras) {
    const tile = tpl.content.firstElementChild.cloneNode(true);
    tile.dataset.cameraId = cam.id;
    tile.querySelector('.camera-name').textContent = cam.name;
    tile.querySelector('.model').textContent = t(state.lang, cam.model);
    tile.querySelector('.plan').textContent = t(state.lang, cam.plan);
    tile.classList.toggle('online', cam.online);
    tile.querySelector('.status-text').textContent = t(state.lang, cam.online ? 'online' : 'offline');
    list.append(tile);
  }
}

function renderHistory(entries) {
  const list = $('history');
  list.replaceChildren();
  if (entries.length === 0) {
    const li = document.createElement('li');
    li.className = 'muted';
    li.textContent = t(state.lang, 'historyEmpty');
    list.append(li);
  }
  const when = new Intl.DateTimeFormat(state.lang, { dateStyle: 'medium', timeStyle: 'short' });
  for (const e of entries) {
    const li = document.createElement('li');
    const time = document.createElement('time');
    time.dateTime = e.at;
    time.textContent = when.format(new Date(e.at));
    const what = document.createElement('span');
    what.className = 'what';
    what.textContent = t(state.lang, `action.${e.action}`, e.detail || {});
    const who = document.createElement('span');
    who.className = 'muted';
    who.textContent = `${e.actor_name} · ${t(state.lang, 'via', { c: t(state.lang, `channel.${e.channel}`) })}`;
    li.append(time, what, who);
    list.append(li);
  }
}

async function render() {
  const me = state.me;
  $('who').textContent = me.name;
  if (me.role === 'operator') {
    $('operator-center').textContent = t(state.lang, me.guard_center);
    $('operator-email').textContent = me.email;
    show('operator-view');
    return;
  }
  const [cams, hist] = await Promise.all([api('GET', '/api/cameras'), api('GET', '/api/history?limit=20')]);
  if (cams.resp.status === 401) return loggedOut();
  renderCameras(cams.data || []);
  renderHistory(hist.data || []);
  show('cameras-view');
}

function loggedIn(me) {
  state.me = me;
  if (LANGS.includes(me.lang) && me.lang !== state.lang) {
    state.lang = me.lang;
    localStorage.setItem('eyeward.lang', me.lang);
    applyLang();
  }
  return render();
}

function loggedOut() {
  state.me = null;
  // Nothing of the last account stays in the page for the next one to see.
  for (const id of ['cameras', 'history', 'who', 'operator-center', 'operator-email']) $(id).replaceChildren();
  $('password').value = '';
  show('login-view');
  $('email').focus();
}

async function onLogin(ev) {
  ev.preventDefault();
  const err = $('login-error');
  err.hidden = true;
  const email = $('email').value.trim();
  const password = $('password').value;
  if (!email || !password) {
    err.textContent = t(state.lang, 'missingFields');
    err.hidden = false;
    return;
  }
  const submit = $('login-submit');
  submit.disabled = true;
  submit.textContent = t(state.lang, 'loggingIn');
  try {
    const { resp, data } = await api('POST', '/api/login', { email, password });
    if (resp.ok) {
      $('password').value = '';
      await loggedIn(data);
      return;
    }
    err.textContent = resp.status === 429
      ? t(state.lang, 'throttled', { s: resp.headers.get('Retry-After') || '60' })
      : resp.status === 401 ? t(state.lang, 'wrongPassword') : (data && data.error) || resp.statusText;
    err.hidden = false;
  } catch {
    err.textContent = t(state.lang, 'networkError');
    err.hidden = false;
  } finally {
    submit.disabled = false;
    submit.textContent = t(state.lang, 'login');
  }
}

async function onLogout() {
  await api('POST', '/api/logout').catch(() => {});
  loggedOut();
}

// Camera status changes as agents come and go: refresh it while the list is on screen.
const REFRESH_MS = 10_000;
setInterval(async () => {
  if (!state.me || state.me.role !== 'customer' || document.hidden || $('cameras-view').hidden) return;
  const { resp, data } = await api('GET', '/api/cameras').catch(() => ({ resp: { ok: false } }));
  if (resp.ok) renderCameras(data);
  else if (resp.status === 401) loggedOut();
}, REFRESH_MS);

async function start() {
  applyLang();
  for (const b of document.querySelectorAll('[data-lang]')) {
    b.addEventListener('click', () => setLang(b.dataset.lang));
  }
  $('login-form').addEventListener('submit', onLogin);
  $('logout').addEventListener('click', onLogout);
  try {
    const { resp, data } = await api('GET', '/api/me');
    if (resp.ok) await loggedIn(data);
    else loggedOut();
  } catch {
    $('fatal').textContent = t(state.lang, 'networkError');
    $('fatal').hidden = false;
  }
}

start();

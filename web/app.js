// The viewer shell: login, the customer's cameras and activity, the language switch, logout;
// for operators, the guard-center console.
// User text (names, addresses) is only ever assigned to textContent, never parsed as HTML.
import { api, errorText } from './api.js';
import { ArmingPanel } from './arming.js';
import { GuardConsole } from './console.js';
import { GuardRequests } from './dispatch.js';
import { clipPlayer } from './clip.js';
import { EventFeed, eventItem, olderThan } from './feed.js';
import { HouseholdPanel, may, showInvitation } from './household.js';
import { IdentityCard } from './identity.js';
import { LiveGrid, latestPicture, showPicture } from './grid.js';
import { LANGS, dayNames, formatTime, homeDay, homeDayStart, t } from './i18n.js';
import { LivePlayer } from './live.js';
import { PanTiltControls } from './ptz.js';
import { PushPanel } from './push.js';
import { PasskeyPanel, ceremonyError, passkeyGate, passkeysInBrowser, signInWithPasskey } from './passkeys.js';

const $ = (id) => document.getElementById(id);
const state = {
  lang: initialLang(), me: null, cameras: [], player: null, ptz: null, statsTimer: null, eventFeed: null,
  dispatch: null, console: null, arming: null, household: null, passkeys: null, push: null,
  // The event page's wait for a clip on its way.
  clipWait: null,
  // The camera whose live view plays.
  liveCamera: null,
  // The live view's day of events, as far back as paged.
  dayEvents: { camera: null, day: null, list: [], more: false },
  feed: null,
  grid: null,
};

function initialLang() {
  const saved = localStorage.getItem('eyeward.lang');
  if (LANGS.includes(saved)) return saved;
  return (navigator.language || '').toLowerCase().startsWith('ja') ? 'ja' : 'en';
}

function applyLang() {
  document.documentElement.lang = state.lang;
  for (const el of document.querySelectorAll('[data-i18n]')) {
    el.textContent = t(state.lang, el.dataset.i18n);
  }
  for (const el of document.querySelectorAll('[data-i18n-label]')) {
    el.setAttribute('aria-label', t(state.lang, el.dataset.i18nLabel));
  }
  for (const el of document.querySelectorAll('[data-i18n-alt]')) {
    el.alt = t(state.lang, el.dataset.i18nAlt);
  }
  for (const b of document.querySelectorAll('[data-lang]')) {
    b.setAttribute('aria-pressed', String(b.dataset.lang === state.lang));
  }
  if (state.ptz) state.ptz.relabel();
  // The arming words at once, not after the reload the switch starts.
  if (state.arming) state.arming.render();
  if (state.dispatch) state.dispatch.relabel();
  if (state.console) state.console.relabel();
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

// Shows one view. A view that was not on screen takes the focus to its heading, so a screen
// reader says where the person now is and the keyboard starts from there.
function show(view) {
  const changed = $(view).hidden;
  for (const id of VIEWS) $(id).hidden = id !== view;
  const loggedIn = view !== 'login-view' && view !== 'invite-view';
  $('logout').hidden = !loggedIn;
  $('who').hidden = !loggedIn;
  if (changed && view !== 'login-view') $(view).querySelector('h1').focus({ preventScroll: false });
}
const VIEWS = ['login-view', 'invite-view', 'passkey-gate-view', 'cameras-view', 'live-view', 'event-view', 'feed-view', 'grid-view', 'console-view'];

function renderCameras(cameras) {
  const list = $('cameras');
  list.replaceChildren();
  $('cameras-empty').hidden = cameras.length > 0;
  const tpl = $('camera-tile');
  for (const cam of cameras) {
    const tile = tpl.content.firstElementChild.cloneNode(true);
    tile.dataset.cameraId = cam.id;
    tile.querySelector('.tile-link').href = `#camera/${cam.id}`;
    tile.querySelector('.camera-name').textContent = cam.name;
    tile.querySelector('.model').textContent = t(state.lang, cam.model);
    tile.querySelector('.plan').textContent = t(state.lang, cam.plan);
    tile.classList.toggle('online', cam.online);
    tile.querySelector('.status-text').textContent = t(state.lang, cam.online ? 'online' : 'offline');
    // A camera that mails no alert in the mode on now says so.
    const quiet = tile.querySelector('.quiet');
    quiet.hidden = !state.arming || state.arming.alerting(cam);
    quiet.textContent = t(state.lang, 'alertsQuiet');
    // The poster: the last picture seen in this tab, else the latest motion snapshot.
    const poster = tile.querySelector('.poster');
    const still = sessionStorage.getItem(stillKey(cam.id));
    if (still) showPicture(poster, state.lang, { url: still });
    else latestPicture(cam.id).then((p) => { if (p) showPicture(poster, state.lang, p); });
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
  for (const e of entries) {
    const li = document.createElement('li');
    const time = document.createElement('time');
    time.dateTime = e.at;
    time.textContent = formatTime(state.lang, e.at);
    const what = document.createElement('span');
    what.className = 'what';
    const detail = e.detail || {};
    const by = detail.with === 'passkey' ? '.passkey' : '';
    what.textContent = t(state.lang, `action.${e.action}${by}`, historyVars(detail));
    const who = document.createElement('span');
    who.className = 'muted who-did';
    // A camera's own entries (online, offline) are signed by the camera: say which, by name.
    const actor = e.actor_kind === 'agent' ? cameraName(detail.camera_id) ?? e.actor_name : e.actor_name;
    who.textContent = `${actor} · ${t(state.lang, 'via', { c: t(state.lang, `channel.${e.channel}`) })}`;
    li.append(time, what, who);
    list.append(li);
  }
}

function cameraName(id) {
  const cam = state.cameras.find((c) => c.id === id);
  return cam ? cam.name : undefined;
}

// A history entry's details as its words show them: the camera by its current name, amounts
// of yen with separators.
function historyVars(detail) {
  const vars = { ...detail };
  if (vars.camera === undefined && detail.camera_id !== undefined) vars.camera = cameraName(detail.camera_id) ?? '';
  // Arming: the mode, the days and the switches in words.
  if (typeof detail.mode === 'string') vars.mode = t(state.lang, `mode.${detail.mode}`);
  if (typeof detail.result === 'string') vars.result = t(state.lang, `identityOutcome.${detail.result}`);
  vars.by = detail.by === 'schedule' ? t(state.lang, 'bySchedule') : '';
  if (Array.isArray(detail.days)) vars.days = dayNames(state.lang, detail.days);
  for (const k of ['away', 'home']) {
    if (typeof detail[k] === 'boolean') vars[k] = t(state.lang, detail[k] ? 'alertOn' : 'alertOff');
  }
  for (const k of ['fee_yen', 'fee_due_yen']) {
    if (typeof vars[k] === 'number') vars[k] = new Intl.NumberFormat(state.lang).format(vars[k]);
  }
  return vars;
}

async function render() {
  const me = state.me;
  $('who').textContent = me.name;
  if (!state.passkeys) state.passkeys = new PasskeyPanel(() => state.lang);
  if (me.role === 'operator') {
    // Operators see people's homes: where the relay offers passkeys, the console opens only
    // to a session signed in or checked with one.
    const pk = await api('GET', '/api/passkeys');
    if (pk.resp.status === 401) return loggedOut();
    if (pk.resp.ok && pk.data.needed && !pk.data.checked) {
      show('passkey-gate-view');
      await passkeyGate(() => state.lang, pk.data);
    }
    if (!state.console) state.console = new GuardConsole($('console-view'), () => state.lang);
    state.console.start(me);
    show('console-view');
    await state.passkeys.load($('console-view'));
    return;
  }
  // A household member sees the cameras they were given, with what they may do there; the
  // arming, the alert addresses, the household, the fees and the history are the holder's.
  const holder = me.role === 'customer';
  for (const el of document.querySelectorAll('.holder-only')) el.hidden = !holder;
  const none = Promise.resolve({ resp: { ok: false } });
  const [cams, hist] = await Promise.all([
    api('GET', '/api/cameras'),
    holder ? api('GET', '/api/history?limit=20') : none,
  ]);
  if (cams.resp.status === 401) return loggedOut();
  state.cameras = cams.data || [];
  if (holder) {
    if (!state.arming) state.arming = new ArmingPanel(() => state.lang, armingChanged);
    await state.arming.load(state.cameras);
    if (!state.household) state.household = new HouseholdPanel(() => state.lang);
    await state.household.load(state.cameras);
    if (!state.identity) state.identity = new IdentityCard(() => state.lang, historyChanged);
    await state.identity.load();
  }
  renderCameras(state.cameras);
  if (!state.dispatch) state.dispatch = new GuardRequests(() => state.lang);
  state.dispatch.setCameras(state.cameras);
  state.dispatch.start(me);
  if (holder) renderHistory(hist.data || []);
  // A member given alert mail on a camera keeps addresses of their own.
  const mailed = holder || state.cameras.some((c) => may(c, 'alerts'));
  $('alerts').hidden = !mailed;
  if (mailed) loadAddresses(holder);
  if (!state.push) state.push = new PushPanel(() => state.lang);
  await state.push.load(mailed);
  await state.passkeys.load($('cameras-view'));
  await route();
}

// The mode or a camera's alert switches changed: the tiles say which cameras alert, and the
// history shows the switch.
async function armingChanged() {
  if (!$('cameras-view').hidden) renderCameras(state.cameras);
  await historyChanged();
}

// The history has a new entry to show.
async function historyChanged() {
  const hist = await api('GET', '/api/history?limit=20').catch(() => ({ resp: { ok: false } }));
  if (hist.resp.ok) renderHistory(hist.data);
}

// The addresses that receive alert mail: listed with their state, added (a confirmation mail
// goes out) and removed here; the holder's also receive the notices switched here.
async function loadAddresses(holder = state.me && state.me.role === 'customer') {
  const [addresses, notices] = await Promise.all([
    api('GET', '/api/alert-addresses'),
    holder ? api('GET', '/api/mail-settings') : Promise.resolve({ resp: { ok: false } }),
  ]).catch(() => [{ resp: { ok: false } }, { resp: { ok: false } }]);
  if (addresses.resp.ok) renderAddresses(addresses.data);
  if (notices.resp.ok) {
    $('notify-offline').checked = notices.data.offline;
    $('notify-operations').checked = notices.data.operations;
    $('notify-ptz').checked = notices.data.ptz;
  }
}

async function saveNotices() {
  await api('PUT', '/api/mail-settings', {
    offline: $('notify-offline').checked,
    operations: $('notify-operations').checked,
    ptz: $('notify-ptz').checked,
  }).catch(() => {});
}

function renderAddresses(addresses) {
  const list = $('alert-addresses');
  list.replaceChildren();
  if (addresses.length === 0) {
    const li = document.createElement('li');
    li.className = 'muted';
    li.textContent = t(state.lang, 'alertsEmpty');
    list.append(li);
  }
  for (const a of addresses) {
    const li = document.createElement('li');
    li.dataset.addressId = a.id;
    const email = document.createElement('span');
    email.className = 'email';
    email.textContent = a.email;
    const badge = document.createElement('span');
    badge.className = a.confirmed ? 'badge' : 'badge pending';
    badge.textContent = t(state.lang, a.confirmed ? 'alertConfirmed' : 'alertPending');
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.className = 'secondary';
    remove.textContent = t(state.lang, 'alertRemove');
    remove.setAttribute('aria-label', t(state.lang, 'alertRemoveLabel', { email: a.email }));
    remove.addEventListener('click', async () => {
      remove.disabled = true;
      await api('DELETE', `/api/alert-addresses/${a.id}`).catch(() => {});
      loadAddresses();
    });
    li.append(email, badge, remove);
    list.append(li);
  }
  $('alert-add').disabled = addresses.length >= 5;
}

async function onAddAddress(ev) {
  ev.preventDefault();
  const input = $('alert-email');
  const err = $('alert-error');
  err.hidden = true;
  const { resp, data } = await api('POST', '/api/alert-addresses', { email: input.value })
    .catch(() => ({ resp: { ok: false }, data: null }));
  if (resp.ok) {
    input.value = '';
    loadAddresses();
    return;
  }
  err.textContent = resp.status ? errorText(state.lang, resp, data) : t(state.lang, 'networkError');
  err.hidden = false;
}

// #camera/ID shows that camera live, #event/ID one motion event (the link in an alert mail),
// #event/ID/clip the same with its clip playing (the mail's other link); anything else, the
// list.
async function route() {
  // A mailed invitation's link, whoever is logged in (taking it logs its person in).
  const invitation = location.hash.match(/^#invite\/([\w-]+)$/);
  if (invitation) {
    await stopLive();
    await showInvitation(invitation[1], () => state.lang, loggedIn);
    show('invite-view');
    return;
  }
  if (!state.me || !['customer', 'member'].includes(state.me.role)) return;
  stopClipWait();
  // Leaving the grid ends its sessions; coming to it starts them.
  if (state.grid && location.hash !== '#grid') await state.grid.stop();
  if (location.hash === '#grid') {
    await stopLive();
    if (state.dispatch) state.dispatch.hideCamera();
    if (!state.grid) state.grid = new LiveGrid(() => state.lang);
    show('grid-view');
    await state.grid.start(state.cameras.filter((c) => may(c, 'watch')));
    return;
  }
  if (location.hash === '#events') {
    await stopLive();
    if (state.dispatch) state.dispatch.hideCamera();
    if (!state.feed) state.feed = new EventFeed(() => state.lang);
    state.feed.setCameras(state.cameras);
    show('feed-view');
    await state.feed.load();
    return;
  }
  const ev = location.hash.match(/^#event\/(\d+)(\/clip)?$/);
  if (ev) {
    await stopLive();
    if (state.dispatch) state.dispatch.hideCamera();
    await showEvent(Number(ev[1]), !!ev[2]);
    return;
  }
  const m = location.hash.match(/^#camera\/(\d+)$/);
  const cam = m && state.cameras.find((c) => String(c.id) === m[1]);
  if (!cam) {
    await stopLive();
    renderCameras(state.cameras);
    if (state.dispatch) state.dispatch.hideCamera();
    show('cameras-view');
    return;
  }
  $('live-name').textContent = cam.name;
  $('player').setAttribute('aria-label', t(state.lang, 'videoLabel', { name: cam.name }));
  show('live-view');
  // A guard may be requested from a dispatch-plan camera's live view only.
  if (state.dispatch) state.dispatch.showCamera(cam);
  if (!state.player) state.player = new LivePlayer($('video'), setLiveStatus, setSound);
  if (!state.ptz) state.ptz = new PanTiltControls($('ptz'), $('player'), $('video'), (key, vars) => t(state.lang, key, vars));
  // What a household member was not given is not offered: the picture, pan-tilt (on a
  // pan-tilt camera only), the speaker, the events.
  const watching = may(cam, 'watch');
  $('stage').hidden = !watching;
  $('live-tools').hidden = !watching;
  $('live-not-given').hidden = watching;
  $('talk').hidden = !may(cam, 'speak');
  $('live-events').hidden = !may(cam, 'events');
  if (watching && cam.model === 'pan-tilt' && may(cam, 'move')) state.ptz.open(cam.id);
  else state.ptz.close();
  if (state.liveCamera !== cam.id) {
    state.liveCamera = cam.id;
    if (may(cam, 'events')) watchEvents(cam.id);
    if (!watching) return;
    const playing = state.player.play(`/api/cameras/${cam.id}/whep`);
    playing.catch((e) => {
      $('fatal').textContent = e.message;
      $('fatal').hidden = false;
    });
  }
}

// One motion event, full size: its camera, its time, its clip or the picture to download, and
// the way to the camera's live view. Reached from the list, the timeline, or an alert mail's
// links (after logging in, if need be); `play` starts the clip, and a clip still on its way
// from the camera shows as soon as the relay has it.
async function showEvent(id, play = false) {
  const { resp, data } = await api('GET', `/api/events/${id}`).catch(() => ({ resp: { ok: false } }));
  if (resp.status === 401) return loggedOut();
  const found = resp.ok;
  $('event-missing').hidden = found;
  $('event-body').hidden = !found;
  if (found) {
    const at = formatTime(state.lang, data.at, 'full');
    $('event-camera').textContent = data.camera_name;
    $('event-at').textContent = at;
    $('event-at').dateTime = data.at;
    $('event-live').href = `#camera/${data.camera_id}`;
    // The camera's previous and next events, a click (or ← →) away.
    for (const [id, to] of [['event-older', data.older_id], ['event-newer', data.newer_id]]) {
      $(id).hidden = to === null || to === undefined;
      $(id).href = $(id).hidden ? '#' : `#event/${to}`;
    }
    const picture = $('event-picture');
    // With a clip, the clip takes the picture's place (the picture is its poster).
    picture.hidden = !data.snapshot_url || !!data.clip;
    $('event-download').hidden = !data.snapshot_url;
    $('event-no-picture').hidden = !!data.snapshot_url;
    if (data.snapshot_url) {
      picture.src = data.snapshot_url;
      picture.alt = t(state.lang, 'eventPictureAlt', { camera: data.camera_name, t: at });
      $('event-download').href = data.snapshot_url;
      $('event-download').download = `${data.camera_name}-${data.at}.jpg`.replace(/[\\/:*?"<>|\s]+/g, '-');
    }
    $('event-clip').replaceChildren(...(data.clip ? [clipPlayer(state.lang, data, at, play)] : []));
    $('event-clip-coming').hidden = !data.clip_coming;
    if (data.clip_coming) awaitClip(data, play);
  }
  state.shownEvent = found ? data : null;
  show('event-view');
}

// The clip of event `e`, on its way from the camera: the camera's live feed says when the
// relay has it, and the event is shown again with it.
function awaitClip(e, play) {
  stopClipWait();
  const feed = new EventSource(`/api/cameras/${e.camera_id}/events/live`);
  const check = async () => {
    const { resp, data } = await api('GET', `/api/events/${e.id}`).catch(() => ({ resp: { ok: false } }));
    if (resp.ok && data.clip && state.clipWait === feed && location.hash.startsWith(`#event/${e.id}`)) {
      stopClipWait();
      await showEvent(e.id, play);
    }
  };
  // Asked again on every (re)connection too: nothing stored meanwhile is missed.
  feed.addEventListener('open', check);
  feed.addEventListener('event', (m) => {
    if (JSON.parse(m.data).id === e.id) check();
  });
  state.clipWait = feed;
}

function stopClipWait() {
  if (state.clipWait) state.clipWait.close();
  state.clipWait = null;
}

// The camera's motion events under its live picture: newest first, one day of the home's
// calendar (today by default), fetched again whenever the relay's live feed says one was
// stored.
const DAY_MS = 24 * 3600 * 1000;
const DAY_PAGE = 100;

async function loadEvents(cameraId) {
  const day = $('events-day').value || homeDay(Date.now());
  const from = homeDayStart(day);
  const first = await dayPage(cameraId, from, null);
  if (!first) return;
  // Older pages already shown stay: a new event adds to the top of the day, it does not
  // take the rest away.
  const kept = state.dayEvents.camera === cameraId && state.dayEvents.day === day ? state.dayEvents.list : [];
  const ids = new Set(first.events.map((e) => e.id));
  const older = kept.filter((e) => !ids.has(e.id) && Date.parse(e.at) < Date.parse(first.events.at(-1)?.at ?? 0));
  state.dayEvents = { camera: cameraId, day, list: [...first.events, ...older], more: older.length > 0 ? state.dayEvents.more : first.more };
  renderDay(from);
}

// One page (100) of the camera's events of the day starting at `from`, after `last`.
async function dayPage(cameraId, from, last) {
  const before = last ? olderThan(last) : `&before=${from + DAY_MS}`;
  const { resp, data } = await api('GET', `/api/cameras/${cameraId}/events?limit=${DAY_PAGE}${before}`)
    .catch(() => ({ resp: { ok: false } }));
  if (!resp.ok || state.liveCamera !== cameraId) return null;
  const events = data.filter((e) => Date.parse(e.at) >= from);
  // A full page still inside the day: the day has older events.
  return { events, more: data.length === DAY_PAGE && events.length === data.length };
}

async function olderOfDay() {
  const { camera, day, list } = state.dayEvents;
  const button = $('events-older');
  button.disabled = true;
  const next = await dayPage(camera, homeDayStart(day), list.at(-1));
  button.disabled = false;
  if (!next || state.dayEvents.camera !== camera || state.dayEvents.day !== day) return;
  state.dayEvents = { camera, day, list: [...list, ...next.events], more: next.more };
  renderDay(homeDayStart(day));
}

function renderDay(from) {
  renderEvents(state.dayEvents.list, from);
  $('events-older').hidden = !state.dayEvents.more;
}

function renderEvents(events, dayStart) {
  const list = $('event-list');
  list.replaceChildren(...events.map((e) => eventItem(state.lang, e)));
  $('events-empty').hidden = events.length > 0;
  // The day as a bar, each event a link at its time: a list a screen reader reads out.
  const bar = $('timeline');
  bar.replaceChildren();
  const today = events.filter((e) => {
    const at = Date.parse(e.at) - dayStart;
    return at >= 0 && at < DAY_MS;
  });
  bar.setAttribute('aria-label', t(state.lang, 'timelineLabel', { n: today.length }));
  for (const e of today) {
    const li = document.createElement('li');
    const mark = document.createElement('a');
    mark.className = 'mark';
    mark.href = `#event/${e.id}`;
    mark.style.left = `${((Date.parse(e.at) - dayStart) / DAY_MS) * 100}%`;
    mark.setAttribute('aria-label', t(state.lang, 'timelineEvent', { t: formatTime(state.lang, e.at, 'time') }));
    li.append(mark);
    bar.append(li);
  }
  // Hour marks under the bar, every three hours of the home's day.
  const hours = $('timeline-hours');
  if (hours.childElementCount === 0) {
    for (let h = 0; h < 24; h += 3) {
      const label = document.createElement('span');
      label.textContent = String(h);
      label.style.left = `${(h / 24) * 100}%`;
      hours.append(label);
    }
  }
}

// A click on the bar between marks opens the event nearest that time of the day.
function onTimelineClick(ev) {
  if (ev.target.closest('a') || !state.dayEvents.day) return;
  const box = $('timeline').getBoundingClientRect();
  const at = homeDayStart(state.dayEvents.day) + ((ev.clientX - box.left) / box.width) * DAY_MS;
  const withPicture = state.dayEvents.list.filter((e) => e.snapshot_url);
  if (withPicture.length === 0) return;
  const nearest = withPicture.reduce((a, b) => (Math.abs(Date.parse(b.at) - at) < Math.abs(Date.parse(a.at) - at) ? b : a));
  location.hash = `#event/${nearest.id}`;
}

// The relay pushes each new event (server-sent events); the browser reconnects the feed by
// itself, and every (re)connection fetches the list, so nothing stored meanwhile is missed.
function watchEvents(cameraId) {
  stopEvents();
  $('event-list').replaceChildren();
  const feed = new EventSource(`/api/cameras/${cameraId}/events/live`);
  const reload = () => loadEvents(cameraId);
  feed.addEventListener('open', reload);
  feed.addEventListener('event', reload);
  feed.addEventListener('resync', reload);
  // The relay node stops: the video goes on through another node.
  feed.addEventListener('reconnect', () => { if (state.player) state.player.reconnect(); });
  state.eventFeed = feed;
}

function stopEvents() {
  if (state.eventFeed) state.eventFeed.close();
  state.eventFeed = null;
}

// The live view's badge. An offline camera says since when (the relay knows when its link
// went down) while the player keeps trying quietly in the background.
// A picture that stops may mean the camera went offline: the relay says whether it did.
async function setLiveStatus(status) {
  const badge = $('live-status');
  badge.dataset.status = status || '';
  badge.textContent = status ? t(state.lang, `live.${status}`) : '';
  if ((status !== 'offline' && status !== 'reconnecting') || !state.liveCamera) return;
  const id = state.liveCamera;
  const { resp, data } = await api('GET', `/api/cameras/${id}`).catch(() => ({ resp: { ok: false } }));
  if (!resp.ok || state.liveCamera !== id || badge.dataset.status !== status) return;
  if (status === 'reconnecting') {
    if (!data.online) state.player.setStatus('offline');
    return;
  }
  if (data.offline_since) badge.textContent = t(state.lang, 'live.offlineSince', { t: formatTime(state.lang, data.offline_since) });
}

// The last picture seen of a camera becomes its tile's poster, kept for this tab only and
// forgotten at logout. (Without one, the tile shows the camera's latest motion snapshot.)
const STILL_WIDTH = 320;

function stillKey(cameraId) {
  return `eyeward.still.${state.me ? state.me.id : ''}.${cameraId}`;
}

function keepStill() {
  const v = $('video');
  if (!state.liveCamera || !v.videoWidth) return;
  const canvas = document.createElement('canvas');
  canvas.width = STILL_WIDTH;
  canvas.height = Math.round((STILL_WIDTH * v.videoHeight) / v.videoWidth);
  canvas.getContext('2d').drawImage(v, 0, 0, canvas.width, canvas.height);
  try {
    sessionStorage.setItem(stillKey(state.liveCamera), canvas.toDataURL('image/jpeg', 0.7));
  } catch {
    // Storage full or disabled: the tile keeps its plain poster.
  }
}

function forgetStills() {
  for (const k of Object.keys(sessionStorage)) {
    if (k.startsWith('eyeward.still.')) sessionStorage.removeItem(k);
  }
}

// The listen button says whether the camera is heard; the line beside it why it cannot be.
function setSound({ listening = false, error = null }) {
  const button = $('listen');
  button.setAttribute('aria-pressed', String(listening));
  button.textContent = t(state.lang, listening ? 'listen.on' : 'listen');
  $('listen-status').textContent = error ? t(state.lang, 'listen.failed', { why: error }) : '';
}

async function toggleSound() {
  if (!state.player) return;
  const on = $('listen').getAttribute('aria-pressed') !== 'true';
  if (on) $('listen-status').textContent = t(state.lang, 'listen.starting');
  await state.player.listen(on);
}

// Press-and-hold "speak", as on an intercom: the camera's speaker plays the microphone from
// the press until the button (or Space, Enter) is let go.
let talkHeld = false;

function setTalk({ talking = false, error = null, microphone = false }) {
  const button = $('talk');
  button.setAttribute('aria-pressed', String(talking));
  button.textContent = t(state.lang, talking ? 'talk.on' : 'talk');
  $('talk-status').textContent = error ? t(state.lang, microphone ? 'talk.noMic' : 'talk.failed', { why: error }) : '';
}

async function startTalk() {
  if (!state.player || talkHeld) return;
  talkHeld = true;
  $('talk-status').textContent = t(state.lang, 'talk.starting');
  const answer = await state.player.talk(true);
  // Let go while the speaker was being set up: stop at once.
  if (!talkHeld) {
    if (answer.talking) await state.player.talk(false);
    setTalk({});
    return;
  }
  setTalk(answer);
}

async function stopTalk() {
  if (!talkHeld) return;
  talkHeld = false;
  const pressed = $('talk').getAttribute('aria-pressed') === 'true';
  if (pressed) setTalk(await state.player.talk(false));
}

async function stopLive() {
  await stopTalk();
  setTalk({});
  setSound({});
  keepStill();
  stopEvents();
  if (state.ptz) state.ptz.close();
  if (state.player) await state.player.stop();
  state.liveCamera = null;
  showStats(false);
}

function showStats(on) {
  $('stats').hidden = !on;
  $('stats-toggle').setAttribute('aria-pressed', String(on));
  clearInterval(state.statsTimer);
  state.statsTimer = null;
  if (!on) return;
  const update = async () => {
    const s = state.player && (await state.player.stats());
    if (!s) return;
    const rtt = s.rttMs === null ? '–' : `${s.rttMs} ms`;
    $('stats').textContent = `${s.width}×${s.height}  ${s.fps} fps\n${s.kbps} kbit/s  RTT ${rtt}`;
  };
  update();
  state.statsTimer = setInterval(update, 1000);
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
  stopLive();
  stopClipWait();
  forgetStills();
  state.me = null;
  // Nothing of the last account stays in the page for the next one to see.
  if (state.dispatch) state.dispatch.stop();
  if (state.console) state.console.stop();
  if (state.arming) state.arming.stop();
  if (state.household) state.household.stop();
  if (state.feed) state.feed.stop();
  if (state.grid) state.grid.stop();
  state.dayEvents = { camera: null, day: null, list: [], more: false };
  for (const id of ['cameras', 'history', 'who', 'event-list', 'timeline', 'event-clip']) $(id).replaceChildren();
  for (const id of ['event-camera', 'event-at']) $(id).textContent = '';
  $('event-picture').removeAttribute('src');
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

// Signs in with whichever of this site's passkeys the person picks (no address typed).
async function onPasskeyLogin() {
  const err = $('login-error');
  err.hidden = true;
  const button = $('login-passkey');
  button.disabled = true;
  try {
    const outcome = await signInWithPasskey();
    if (outcome.resp && outcome.resp.ok) {
      await loggedIn(outcome.data);
      return;
    }
    err.textContent = ceremonyError(state.lang, outcome);
  } catch {
    err.textContent = t(state.lang, 'networkError');
  } finally {
    button.disabled = false;
  }
  err.hidden = false;
}

// The passkey button shows where both this browser and the relay can use one.
async function offerPasskeyLogin() {
  if (!passkeysInBrowser()) return;
  const { resp, data } = await api('GET', '/api/login/passkey').catch(() => ({ resp: { ok: false } }));
  $('login-passkey').hidden = !(resp.ok && data.offered);
}

async function onLogout() {
  await api('POST', '/api/logout').catch(() => {});
  loggedOut();
}

// Camera status changes as agents come and go, and the activity grows: refresh both while the
// page is on screen.
const REFRESH_MS = 5_000;
setInterval(async () => {
  if (!state.me || !['customer', 'member'].includes(state.me.role) || document.hidden) return;
  const holder = state.me.role === 'customer';
  const [cams, hist] = await Promise.all([
    api('GET', '/api/cameras'),
    holder ? api('GET', '/api/history?limit=20') : Promise.resolve({ resp: { ok: false } }),
  ]).catch(() => [{ resp: { ok: false } }, { resp: { ok: false } }]);
  if (cams.resp.ok) {
    state.cameras = cams.data;
    if (state.arming && holder) await state.arming.load(cams.data);
    if (!$('cameras-view').hidden) renderCameras(cams.data);
    if (state.dispatch) state.dispatch.setCameras(cams.data);
  }
  else if (cams.resp.status === 401) return loggedOut();
  if (hist.resp.ok) renderHistory(hist.data);
}, REFRESH_MS);

async function start() {
  applyLang();
  for (const b of document.querySelectorAll('[data-lang]')) {
    b.addEventListener('click', () => setLang(b.dataset.lang));
  }
  $('login-form').addEventListener('submit', onLogin);
  $('login-passkey').addEventListener('click', onPasskeyLogin);
  offerPasskeyLogin();
  $('alert-form').addEventListener('submit', onAddAddress);
  $('notify-offline').addEventListener('change', saveNotices);
  $('notify-operations').addEventListener('change', saveNotices);
  $('notify-ptz').addEventListener('change', saveNotices);
  $('logout').addEventListener('click', onLogout);
  window.addEventListener('hashchange', () => route());
  $('stats-toggle').addEventListener('click', () => showStats($('stats').hidden));
  $('listen').addEventListener('click', toggleSound);
  const talk = $('talk');
  talk.addEventListener('pointerdown', (e) => { e.preventDefault(); talk.setPointerCapture(e.pointerId); startTalk(); });
  for (const ended of ['pointerup', 'pointercancel', 'lostpointercapture']) talk.addEventListener(ended, stopTalk);
  talk.addEventListener('keydown', (e) => {
    if ((e.key === ' ' || e.key === 'Enter') && !e.repeat) { e.preventDefault(); startTalk(); }
  });
  talk.addEventListener('keyup', (e) => { if (e.key === ' ' || e.key === 'Enter') stopTalk(); });
  talk.addEventListener('blur', stopTalk);
  $('events-day').addEventListener('change', () => { if (state.liveCamera) loadEvents(state.liveCamera); });
  $('events-older').addEventListener('click', olderOfDay);
  $('timeline').addEventListener('click', onTimelineClick);
  // In the viewer, ← and → step to the camera's previous and next event.
  document.addEventListener('keydown', (e) => {
    if ($('event-view').hidden || e.altKey || e.ctrlKey || e.metaKey) return;
    const to = { ArrowLeft: 'event-older', ArrowRight: 'event-newer' }[e.key];
    if (to && !$(to).hidden) {
      e.preventDefault();
      location.hash = $(to).getAttribute('href');
    }
  });
  // Full screen takes the picture with its badge and pan-tilt pad, and has its own exit.
  $('fullscreen').addEventListener('click', () => {
    const stage = $('stage');
    if (document.fullscreenElement) document.exitFullscreen();
    else if (stage.requestFullscreen) stage.requestFullscreen().then(() => $('player').focus());
    else if ($('video').webkitEnterFullscreen) $('video').webkitEnterFullscreen();
  });
  $('fullscreen-exit').addEventListener('click', () => { if (document.fullscreenElement) document.exitFullscreen(); });
  // Leaving the page ends the live session on the relay at once.
  window.addEventListener('pagehide', () => { if (state.player) state.player.closeSession(); });
  try {
    // A mailed invitation's link opens its page, logged in or not.
    if (location.hash.startsWith('#invite/')) return await route();
    const { resp, data } = await api('GET', '/api/me');
    if (resp.ok) await loggedIn(data);
    else loggedOut();
  } catch {
    $('fatal').textContent = t(state.lang, 'networkError');
    $('fatal').hidden = false;
  }
}

start();

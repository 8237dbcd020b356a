// The guard's phone. Signed in by the single-use link (or its QR code) an operator issued
// from the console, `/guard.html#TOKEN`, the page shows the guard's current assignment: where
// to go, with a link that opens the phone's navigation; the customer's note and how to get
// in; the picture and live view the customer shares, while the request shares them and is
// open. "On my way", "Arrived" and "Done" (with a short report) move the request on through
// the same rules as the console, and the phone's position goes to the relay while the page
// is open, for the console's proposals and the customer's estimated arrival.
// Once the request closes the page clears everything of the customer (the relay refuses it
// from then on too). A mobile connection comes and goes: each step is sent again until it is
// answered (the relay answers a step already taken as done), only the newest position is
// kept to send, and the live stream reconnects by itself and the page reloads what it shows.
import { api, errorText } from './api.js';
import { LANGS, formatTime, t } from './i18n.js';
import { LivePlayer } from './live.js';

const $ = (id) => document.getElementById(id);
// A step is sent again after these waits (ms) while the phone has no answer.
const RETRY_AFTER = [1000, 2000, 4000, 8000, 15000];
// Positions go at most this often (ms); a newer one replaces one not yet sent.
const POSITION_EVERY_MS = 5000;
// How long a request may wait for an answer before it is given up and sent again (ms).
const ANSWER_WITHIN_MS = 10000;

const state = {
  lang: initialLang(),
  guard: null,        // { name, guard_center }
  assignment: null,   // the open request, as the relay answered
  closed: null,       // { id, state } of the request that just closed
  acting: false,
  player: null,
  pictureUrl: null,   // an object URL of the shared picture, revoked when cleared
  feed: null,
  position: { next: null, sending: false, last: 0, timer: null, watch: null },
};

function initialLang() {
  const saved = localStorage.getItem('eyeward.lang');
  if (LANGS.includes(saved)) return saved;
  return (navigator.language || '').startsWith('ja') ? 'ja' : 'en';
}

const text = (key, vars) => t(state.lang, key, vars);

function applyLang() {
  document.documentElement.lang = state.lang;
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = text(el.dataset.i18n);
  for (const el of document.querySelectorAll('[data-i18n-label]')) el.setAttribute('aria-label', text(el.dataset.i18nLabel));
  for (const el of document.querySelectorAll('[data-i18n-alt]')) el.alt = text(el.dataset.i18nAlt);
  for (const b of document.querySelectorAll('[data-lang]')) b.setAttribute('aria-pressed', String(b.dataset.lang === state.lang));
  render();
}

// `api` with a time limit: a request the network swallowed is given up, to be sent again.
const call = (method, path, body) => api(method, path, body, { within: ANSWER_WITHIN_MS });

// `call`, sent again after a network failure or a 5xx until it is answered otherwise.
async function persist(method, path, body, onRetry = () => {}) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      const answer = await call(method, path, body);
      if (answer.resp.status < 500 || attempt >= RETRY_AFTER.length) return answer;
    } catch {
      if (attempt >= RETRY_AFTER.length) throw new Error('unreachable');
    }
    onRetry();
    await new Promise((r) => setTimeout(r, RETRY_AFTER[attempt]));
  }
}

function show(view) {
  for (const id of ['guard-signed-out', 'guard-view']) $(id).hidden = id !== view;
  $('guard-sign-out').hidden = view !== 'guard-view';
}

// The sign-in link's token is used once and leaves the address bar and the history at once.
async function signIn(token) {
  history.replaceState(null, '', location.pathname);
  const { resp, data } = await persist('POST', '/guard/v1/sign-in', { token });
  if (!resp.ok) return signedOut(resp.status === 404 ? 'guardLinkUsed' : null, resp, data);
  return start();
}

function signedOut(why, resp, data) {
  stopEverything();
  state.guard = null;
  clearAssignment();
  show('guard-signed-out');
  $('guard-signed-out-why').textContent = why ? text(why)
    : resp ? errorText(state.lang, resp, data) : text('guardSignedOutLead');
  $('guard-signed-out').querySelector('h1').focus();
}

function stopEverything() {
  if (state.feed) state.feed.close();
  state.feed = null;
  const p = state.position;
  if (p.watch !== null && navigator.geolocation) navigator.geolocation.clearWatch(p.watch);
  p.watch = null;
  clearTimeout(p.timer);
  p.next = null;
}

async function start() {
  const { resp, data } = await persist('GET', '/guard/v1/assignment').catch(() => ({ resp: null }));
  if (!resp) return connection(false);
  if (resp.status === 401) return signedOut('guardSignedOutLead');
  if (!resp.ok) return signedOut(null, resp, data);
  state.guard = data.guard;
  show('guard-view');
  take(data.assignment);
  follow();
  reportPositions();
}

// The guard's assignments followed live: any change of theirs, and the page reloads it. The
// stream ends when the sign-in is revoked; the page then finds itself signed out.
function follow() {
  if (state.feed) return;
  const feed = new EventSource('/guard/v1/live');
  state.feed = feed;
  feed.addEventListener('open', () => { connection(true); reload(); });
  feed.addEventListener('assignment', () => reload());
  feed.addEventListener('resync', () => reload());
  feed.addEventListener('error', () => {
    connection(false);
    // A closed stream (not one reconnecting) may mean the sign-in was revoked.
    if (feed.readyState === EventSource.CLOSED) {
      state.feed = null;
      setTimeout(() => reload().then(() => { if (state.guard) follow(); }), 1000);
    } else {
      reload();
    }
  });
}

function connection(up) {
  $('guard-connection').textContent = up ? '' : text('guardOffline');
}

async function reload() {
  const { resp, data } = await call('GET', '/guard/v1/assignment').catch(() => ({ resp: null }));
  if (!resp) return connection(false);
  if (resp.status === 401) return signedOut('guardSignedOutLead');
  if (resp.ok) {
    state.guard = data.guard;
    take(data.assignment);
  }
}

// What the relay says the guard's assignment is now: another request, none, or the same.
function take(assignment) {
  const was = state.assignment;
  if (was && (!assignment || assignment.id !== was.id)) {
    // The request closed (or another took its place): nothing of its customer stays.
    state.closed = { id: was.id };
    clearAssignment();
  }
  if (assignment) state.closed = null;
  state.assignment = assignment;
  render();
  if (assignment && (!was || was.id !== assignment.id || was.snapshot !== assignment.snapshot)) loadPicture();
}

// Forgets everything of the customer: the page's copy, the picture, the live view.
function clearAssignment() {
  state.assignment = null;
  if (state.player) state.player.stop();
  state.player = null;
  $('guard-video').hidden = true;
  $('guard-video').removeAttribute('src');
  if (state.pictureUrl) URL.revokeObjectURL(state.pictureUrl);
  state.pictureUrl = null;
  $('guard-snapshot').removeAttribute('src');
  for (const id of ['guard-address', 'guard-customer', 'guard-phone', 'guard-entry', 'guard-key-holder',
    'guard-camera', 'guard-note', 'guard-assignment-title', 'guard-state', 'guard-eta']) {
    $(id).replaceChildren();
  }
  $('guard-map').removeAttribute('href');
  $('guard-report').value = '';
}

async function loadPicture() {
  const a = state.assignment;
  if (!a || !a.snapshot) return;
  const resp = await fetch(a.snapshot, { credentials: 'same-origin' }).catch(() => null);
  if (!resp || !resp.ok || state.assignment !== a) return;
  const blob = await resp.blob();
  if (state.assignment !== a) return;
  if (state.pictureUrl) URL.revokeObjectURL(state.pictureUrl);
  state.pictureUrl = URL.createObjectURL(blob);
  $('guard-snapshot').src = state.pictureUrl;
  $('guard-snapshot-figure').hidden = false;
}

// A link that opens the phone's own navigation to `at`: Apple Maps on iPhones and iPads, the
// standard geo: address (RFC 5870) elsewhere, which Android hands to its navigation apps.
function navigationUrl(at, label, userAgent = navigator.userAgent) {
  const where = `${at.lat},${at.lon}`;
  if (/iPhone|iPad|iPod/.test(userAgent)) return `https://maps.apple.com/?daddr=${where}&dirflg=d`;
  return `geo:${where}?q=${where}(${encodeURIComponent(label || '')})`;
}

function render() {
  if (!state.guard) return;
  $('guard-name').textContent = state.guard.name;
  const a = state.assignment;
  $('guard-assignment').hidden = !a;
  $('guard-idle').hidden = !!a || !!state.closed;
  $('guard-closed').hidden = !state.closed;
  if (state.closed) $('guard-closed').textContent = text('guardClosed', { id: state.closed.id });
  if (!a) return;
  $('guard-assignment').dataset.state = a.state;
  $('guard-assignment-title').textContent = text('dispatchRequestNo', { id: a.id });
  $('guard-state').textContent = text(`guardState.${a.state}`);
  const c = a.customer;
  $('guard-address').textContent = c.address || text('consoleNotGiven');
  const map = $('guard-map');
  map.hidden = !c.location;
  if (c.location) map.href = navigationUrl(c.location, c.address);
  $('guard-customer').textContent = c.name || '—';
  if (c.phone) {
    const callLink = document.createElement('a');
    callLink.href = `tel:${c.phone.replace(/[^\d+]/g, '')}`;
    callLink.textContent = c.phone;
    $('guard-phone').replaceChildren(callLink);
  } else {
    $('guard-phone').textContent = text('consoleNotGiven');
  }
  $('guard-entry').textContent = c.entry || text('consoleNotGiven');
  $('guard-key-holder').textContent = c.key_holder || text('consoleNotGiven');
  $('guard-camera').textContent = a.camera_name || '—';
  $('guard-note').textContent = a.note || text('consoleNoNote');
  $('guard-eta').textContent = a.eta ? text('guardEta', { t: formatTime(state.lang, a.eta, 'time') }) : '';
  $('guard-snapshot-figure').hidden = !a.snapshot || !state.pictureUrl;
  $('guard-live').hidden = !a.live;
  if (!a.live && state.player) stopLive();
  $('guard-depart').hidden = a.state !== 'assigned';
  $('guard-arrive').hidden = !['assigned', 'en_route'].includes(a.state);
  $('guard-complete-form').hidden = a.state !== 'arrived';
  for (const id of ['guard-depart', 'guard-arrive', 'guard-complete']) $(id).disabled = state.acting;
}

// A step of the request (`depart`, `arrive`, `complete`): sent until answered. Sending it
// again is safe: the relay answers a step already taken as done.
async function act(action, body) {
  const a = state.assignment;
  if (!a || state.acting) return;
  const error = $('guard-error');
  error.hidden = true;
  state.acting = true;
  render();
  $('guard-acting').textContent = text('guardSending');
  try {
    const { resp, data } = await persist('POST', `/guard/v1/assignments/${a.id}/${action}`, body,
      () => { $('guard-acting').textContent = text('guardRetrying'); });
    if (resp.status === 401) return signedOut('guardSignedOutLead');
    if (!resp.ok) {
      error.textContent = errorText(state.lang, resp, data);
      error.hidden = false;
    }
  } catch {
    error.textContent = text('guardNotSent');
    error.hidden = false;
  } finally {
    state.acting = false;
    $('guard-acting').textContent = '';
    await reload();
    render();
  }
}

function watchLive() {
  const a = state.assignment;
  if (!a || !a.live) return;
  const video = $('guard-video');
  if (!state.player) {
    state.player = new LivePlayer(video, (s) => {
      $('guard-live-status').textContent = s ? text(`live.${s}`) : '';
    });
  }
  video.hidden = false;
  $('guard-watch').textContent = text('consoleStopWatch');
  $('guard-watch').setAttribute('aria-pressed', 'true');
  state.player.play(a.live).catch(() => {});
}

function stopLive() {
  if (state.player) state.player.stop();
  state.player = null;
  $('guard-video').hidden = true;
  $('guard-live-status').textContent = '';
  $('guard-watch').textContent = text('consoleWatch');
  $('guard-watch').setAttribute('aria-pressed', 'false');
}

// The phone's position while the page is open, for the console's proposals and the
// customer's estimated arrival: at most every few seconds, the newest only.
function reportPositions() {
  const p = state.position;
  if (p.watch !== null || !navigator.geolocation) {
    if (!navigator.geolocation) $('guard-position').textContent = text('guardNoPosition');
    return;
  }
  p.watch = navigator.geolocation.watchPosition(
    (fix) => {
      p.next = { lat: fix.coords.latitude, lon: fix.coords.longitude };
      $('guard-position').textContent = text('guardPositionOn');
      sendPosition();
    },
    () => { $('guard-position').textContent = text('guardNoPosition'); },
    { enableHighAccuracy: true, maximumAge: 5000 },
  );
}

async function sendPosition() {
  const p = state.position;
  if (p.sending || !p.next) return;
  const wait = p.last + POSITION_EVERY_MS - Date.now();
  if (wait > 0) {
    clearTimeout(p.timer);
    p.timer = setTimeout(sendPosition, wait);
    return;
  }
  const fix = p.next;
  p.next = null;
  p.sending = true;
  p.last = Date.now();
  try {
    const { resp } = await call('POST', '/guard/v1/position', fix);
    if (resp.status === 401) return signedOut('guardSignedOutLead');
    // Not taken (too soon, or the relay is busy): it is the newest still, unless a newer came.
    if ((resp.status === 429 || resp.status >= 500) && !p.next) p.next = fix;
  } catch {
    // Not sent: it is the newest still, unless a newer came meanwhile.
    if (!p.next) p.next = fix;
  } finally {
    p.sending = false;
  }
  if (p.next) {
    clearTimeout(p.timer);
    p.timer = setTimeout(sendPosition, POSITION_EVERY_MS);
  }
}

async function signOut() {
  await call('POST', '/guard/v1/sign-out').catch(() => {});
  signedOut('guardSignedOutByYou');
}

function main() {
  for (const b of document.querySelectorAll('[data-lang]')) {
    b.addEventListener('click', () => {
      state.lang = b.dataset.lang;
      localStorage.setItem('eyeward.lang', state.lang);
      applyLang();
    });
  }
  $('guard-depart').addEventListener('click', () => act('depart'));
  $('guard-arrive').addEventListener('click', () => act('arrive'));
  $('guard-complete').addEventListener('click', () => act('complete', { report: $('guard-report').value }));
  $('guard-watch').addEventListener('click', () => (state.player ? stopLive() : watchLive()));
  $('guard-sign-out').addEventListener('click', signOut);
  window.addEventListener('pagehide', () => { if (state.player) state.player.closeSession(); });
  applyLang();
  const token = location.hash.slice(1);
  if (/^[\w-]{16,}$/.test(token)) signIn(token);
  else start();
}

main();

// The guard-center console, for operators: the center's queue of dispatch requests followed
// live (oldest first, each with its age), one request opened with the customer's details and
// what they shared, the steps (accept, send a guard, arrival, completion), and the center's
// guards with where they are. The queue holds no personal data; opening a request is written
// to the customer's history by the relay, so the console opens one only when asked to and
// never again by itself. Everything from the relay is set as text.
import { api, errorText } from './api.js';
import { GuardMap } from './guardmap.js';
import { formatTime, t, yen } from './i18n.js';
import { IdentityCheck } from './identity.js';
import { LivePlayer } from './live.js';
import { Ringer } from './ring.js';

const OPEN = ['requested', 'accepted', 'assigned', 'en_route', 'arrived'];
// The states in which the fee is due (and a cancelled request, if it was accepted first).
const CHARGED = ['accepted', 'assigned', 'en_route', 'arrived', 'completed'];
const STEP_TO = { accept: 'accepted', assign: 'assigned', arrive: 'arrived', complete: 'completed' };
// A guard is on the way in these states.
const DRIVING = ['assigned', 'en_route'];
// How many closed requests stay listed under the open ones.
const CLOSED_SHOWN = 20;

export class GuardConsole {
  // root: the #console-view section; lang(): the page's language now.
  constructor(root, lang) {
    this.root = root;
    this.lang = lang;
    this.items = new Map();   // queue items by id
    this.offset = 0;          // server clock − this clock, ms
    this.detail = null;       // the opened request, as the relay answered
    this.acting = null;       // the state a step in flight leads to
    this.guards = [];
    this.feed = null;
    this.ticker = null;
    this.player = null;       // the shared live view being watched, if any
    this.watching = null;     // the request it belongs to
    this.ringer = new Ringer(this.$('console-ring'), (id) => this.openRequest(id));
    this.guardMap = new GuardMap(this.$('guard-map-dialog'), lang, () => this.loadGuards());
    this.identity = new IdentityCheck(root, lang);
    this.bind();
    // Desktop notifications ring even when the tab is hidden: offered until decided.
    const notify = this.$('console-notify');
    notify.hidden = typeof Notification !== 'function' || Notification.permission !== 'default';
    notify.addEventListener('click', async () => {
      await Notification.requestPermission().catch(() => {});
      notify.hidden = Notification.permission !== 'default';
    });
  }

  $(id) {
    return this.root.querySelector(`#${id}`);
  }

  text(key, vars) {
    return t(this.lang(), key, vars);
  }

  bind() {
    this.$('console-accept').addEventListener('click', () => this.act('accept'));
    // The customer of the opened request is most often the one on the phone.
    this.$('console-identity').addEventListener('click', () => {
      if (this.detail && this.detail.customer) this.identity.prefill(this.detail.customer.number);
    });
    this.$('console-arrive').addEventListener('click', () => this.act('arrive'));
    // Completion carries the operator's short report for the customer (shown and mailed).
    this.$('console-complete').addEventListener('click', async () => {
      const report = this.$('console-report');
      await this.act('complete', { report: report.value });
      if (this.detail && this.detail.request.state === 'completed') report.value = '';
    });
    this.$('console-watch').addEventListener('click', () => {
      if (this.watching) this.stopLive();
      else if (this.detail) this.watchLive(this.detail.request.id);
    });
    const linkDialog = this.$('sign-in-link-dialog');
    this.$('sign-in-link-close').addEventListener('click', () => linkDialog.close());
    linkDialog.addEventListener('close', () => {
      this.$('sign-in-link-qr').replaceChildren();
      this.$('sign-in-link-url').value = '';
      this.loadGuards();
    });
    this.$('sign-in-link-copy').addEventListener('click', async () => {
      const url = this.$('sign-in-link-url');
      url.select();
      await navigator.clipboard?.writeText(url.value).catch(() => {});
    });
    this.$('console-assign-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const id = Number(this.$('console-guard-select').value);
      if (id) this.act('assign', { guard_id: id });
    });
  }

  // Shows the console for operator `me`; the queue is followed live from here on.
  start(me) {
    this.me = me;
    this.$('operator-center').textContent = this.text(me.guard_center);
    this.$('operator-email').textContent = me.email;
    if (this.feed) return this.relabel();
    const feed = new EventSource('/api/ops/dispatch-requests/live');
    // Every (re)connection fetches the queue: nothing that changed meanwhile is missed.
    feed.addEventListener('open', () => this.loadQueue());
    feed.addEventListener('resync', () => this.loadQueue());
    feed.addEventListener('request', (e) => {
      try { this.upsert(JSON.parse(e.data)); } catch { /* a bad message changes nothing */ }
    });
    this.feed = feed;
    this.ticker = setInterval(() => this.tick(), 1000);
    this.loadGuards();
    this.renderQueue();
    this.renderDetail();
  }

  // Watches what the customer shares live with request `id` (each start is written to the
  // customer's history by the relay).
  watchLive(id) {
    const video = this.$('console-video');
    if (!this.player) {
      this.player = new LivePlayer(video, (s) => {
        this.$('console-live-status').textContent = s ? this.text(`live.${s}`) : '';
      });
    }
    this.watching = id;
    video.hidden = false;
    this.$('console-watch').textContent = this.text('consoleStopWatch');
    this.$('console-watch').setAttribute('aria-pressed', 'true');
    this.player.play(`/api/ops/dispatch-requests/${id}/whep`).catch((e) => this.showError(e.message));
  }

  // `ended`: the request closed, and the relay ended the session with it.
  stopLive(ended = false) {
    if (this.player) this.player.stop(ended);
    this.watching = null;
    this.$('console-video').hidden = true;
    this.$('console-live-status').textContent = '';
    this.$('console-watch').textContent = this.text('consoleWatch');
    this.$('console-watch').setAttribute('aria-pressed', 'false');
  }

  // Logged out: nothing of the center's work stays in the page.
  stop() {
    this.ringer.clearAll();
    this.stopLive();
    if (this.feed) this.feed.close();
    this.feed = null;
    clearInterval(this.ticker);
    this.ticker = null;
    this.items.clear();
    this.detail = null;
    this.guards = [];
    for (const id of [
      'console-queue', 'console-closed', 'console-guards', 'operator-center', 'operator-email',
      'console-detail-title', 'console-detail-state', 'console-customer', 'console-address',
      'console-location', 'console-camera', 'console-note', 'console-fee', 'console-shared',
      'console-phone', 'console-entry', 'console-key-holder', 'console-ring',
      'console-guard-select', 'console-proposals', 'console-estimate', 'console-steps', 'console-error',
    ]) {
      this.$(id).replaceChildren();
    }
    delete this.root.dataset.loaded;
    this.identity.clear();
    this.renderDetail();
  }

  relabel() {
    this.renderQueue();
    this.renderDetail();
    this.renderGuards();
    this.identity.render();
  }

  now() {
    return Date.now() + this.offset;
  }

  async loadQueue() {
    const { resp, data } = await api('GET', '/api/ops/dispatch-requests?closed=true').catch(() => ({ resp: { ok: false } }));
    if (!resp.ok || !this.feed) return;
    this.offset = Date.parse(data.now) - Date.now();
    this.items = new Map(data.requests.map((r) => [r.id, r]));
    this.root.dataset.loaded = 'true';
    this.renderQueue();
    if (this.detail) {
      const item = this.items.get(this.detail.request.id);
      if (item) this.follow(item);
    }
  }

  // A request as it is now (from the feed or an answer to a step).
  upsert(item) {
    const old = this.items.get(item.id);
    // The feed may bring an older state after a step's answer: keep the newest.
    if (old && Date.parse(old.updated_at) > Date.parse(item.updated_at)) return;
    this.items.set(item.id, item);
    // What an operator must not miss: a new request, and a cancellation while a guard drives.
    if (!old && item.state === 'requested' && this.root.dataset.loaded === 'true') {
      this.ringer.ring(item.id, this.text('consoleRingNew', { id: item.id }));
    } else if (old && DRIVING.includes(old.state) && item.state === 'cancelled') {
      this.ringer.ring(item.id, this.text('consoleRingCancelled', { id: item.id, guard: item.guard_name || '' }));
    }
    this.renderQueue();
    if (this.detail && this.detail.request.id === item.id) this.follow(item);
    if (!old || old.state !== item.state) this.loadGuards();
  }

  // The opened request changed. While it is open, its state, guard and picture follow and
  // the step is added as seen: fetching it again would be recorded as another look at the
  // customer's details. Once it is closed, the customer's details and what they shared leave
  // the screen, and it is fetched again, which then shows no personal data and records
  // nothing, for the steps and the fee as stored.
  follow(item) {
    const d = this.detail;
    const before = d.request.state;
    d.request = { ...d.request, ...item };
    if (!OPEN.includes(item.state)) {
      for (const k of ['customer', 'camera_name', 'note', 'guards', 'proposals', 'estimate', 'guard_speed_kmh', 'clip', 'clip_coming']) delete d[k];
      this.renderDetail();
      this.reloadClosed(item.id);
      return;
    }
    if (item.state !== before) {
      const mine = this.acting === item.state;
      d.steps = [...(d.steps || []), { to_state: item.state, at: item.updated_at, actor_name: mine ? this.me.name : '' }];
    }
    this.renderDetail();
  }

  async reloadClosed(id) {
    const { resp, data } = await api('GET', `/api/ops/dispatch-requests/${id}`).catch(() => ({ resp: { ok: false } }));
    if (!resp.ok || !this.detail || this.detail.request.id !== id) return;
    this.detail = data;
    this.renderDetail();
  }

  renderQueue() {
    const all = [...this.items.values()];
    const open = all.filter((r) => OPEN.includes(r.state)).sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at) || a.id - b.id);
    const closed = all.filter((r) => !OPEN.includes(r.state)).sort((a, b) => Date.parse(b.updated_at) - Date.parse(a.updated_at)).slice(0, CLOSED_SHOWN);
    this.$('console-queue').replaceChildren(...open.map((r) => this.row(r)));
    this.$('console-closed').replaceChildren(...closed.map((r) => this.row(r)));
    this.$('console-empty').hidden = open.length > 0;
    this.$('console-closed-title').hidden = closed.length === 0;
    this.tick();
  }

  row(r) {
    const li = document.createElement('li');
    li.dataset.requestId = r.id;
    li.dataset.state = r.state;
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'row';
    if (this.detail && this.detail.request.id === r.id) button.setAttribute('aria-current', 'true');
    const id = document.createElement('span');
    id.className = 'id';
    id.textContent = this.text('dispatchRequestNo', { id: r.id });
    const state = document.createElement('span');
    state.className = `state state-${r.state}`;
    state.textContent = this.text(`consoleState.${r.state}`);
    const age = document.createElement('span');
    age.className = 'age';
    if (OPEN.includes(r.state)) age.dataset.since = r.created_at;
    else age.textContent = this.text('consoleClosedAt', { t: clock(this.lang(), r.updated_at) });
    const guard = document.createElement('span');
    guard.className = 'guard';
    guard.textContent = r.guard_name || '';
    const shared = document.createElement('span');
    shared.className = 'shared muted';
    shared.textContent = sharedText(this, r);
    button.append(id, state, age, guard, shared);
    button.addEventListener('click', () => this.openRequest(r.id));
    li.append(button);
    return li;
  }

  // The open requests' ages, against the relay's clock.
  tick() {
    const now = this.now();
    for (const el of this.root.querySelectorAll('.age[data-since]')) {
      el.textContent = age(now - Date.parse(el.dataset.since));
    }
  }

  async openRequest(id) {
    this.ringer.clear(id);
    this.showError('');
    const { resp, data } = await api('GET', `/api/ops/dispatch-requests/${id}`).catch(() => ({ resp: null, data: null }));
    if (!resp) return this.showError(this.text('networkError'));
    if (!resp.ok) return this.showError(errorText(this.lang(), resp, data));
    this.detail = data;
    const item = this.items.get(id);
    if (item && Date.parse(item.updated_at) > Date.parse(data.request.updated_at)) this.follow(item);
    else this.renderDetail();
    this.renderQueue();
    this.$('console-detail').focus();
  }

  async act(action, body) {
    const d = this.detail;
    if (!d) return;
    const id = d.request.id;
    this.showError('');
    const buttons = this.root.querySelectorAll('.console-actions button');
    for (const b of buttons) b.disabled = true;
    // The state this step leads to: the step shows this operator as its actor.
    this.acting = STEP_TO[action];
    try {
      const { resp, data } = await api('POST', `/api/ops/dispatch-requests/${id}/${action}`, body);
      if (resp.ok) this.upsert(data);
      else this.showError(errorText(this.lang(), resp, data));
    } catch {
      this.showError(this.text('networkError'));
    } finally {
      this.acting = null;
      for (const b of buttons) b.disabled = false;
    }
  }

  showError(message) {
    const el = this.$('console-error');
    el.textContent = message;
    el.hidden = !message;
  }

  renderDetail() {
    const d = this.detail;
    const section = this.$('console-detail');
    this.$('console-hint').hidden = !!d;
    section.hidden = !d;
    const img = this.$('console-snapshot');
    if (!d) {
      if (this.watching) this.stopLive();
      img.removeAttribute('src');
      this.$('console-clip').removeAttribute('src');
      delete section.dataset.requestId;
      return;
    }
    const r = d.request;
    const open = OPEN.includes(r.state);
    section.dataset.requestId = r.id;
    section.dataset.state = r.state;
    this.$('console-detail-title').textContent = this.text('dispatchRequestNo', { id: r.id });
    this.$('console-detail-state').textContent = this.text(`consoleState.${r.state}`)
      + (r.guard_name ? ` · ${r.guard_name}` : '');
    this.$('console-closed-note').hidden = open;

    // The customer, while the request is open.
    this.$('console-facts').hidden = !d.customer;
    if (d.customer) {
      this.$('console-customer').textContent = d.customer.name || '—';
      this.$('console-address').textContent = d.customer.address || '—';
      const loc = d.customer.location;
      this.$('console-location').replaceChildren(loc
        ? this.mapLink(loc, this.text('consoleMapHome', { at: `${loc.lat.toFixed(5)}, ${loc.lon.toFixed(5)}` }))
        : '—');
      this.$('console-camera').textContent = d.camera_name || '—';
      this.$('console-note').textContent = d.note || this.text('consoleNoNote');
      // How to reach the customer and get in, from their account.
      const phone = d.customer.phone;
      if (phone) {
        const call = document.createElement('a');
        call.href = `tel:${phone.replace(/[^\d+]/g, '')}`;
        call.textContent = phone;
        this.$('console-phone').replaceChildren(call);
      } else {
        this.$('console-phone').textContent = this.text('consoleNotGiven');
      }
      this.$('console-entry').textContent = d.customer.entry || this.text('consoleNotGiven');
      this.$('console-key-holder').textContent = d.customer.key_holder || this.text('consoleNotGiven');
    }
    // Queue items from the feed carry the fee as charged now.
    const fee = r.fee_due_yen ?? d.fee_due_yen;
    this.$('console-fee').textContent = fee > 0
      ? yen(this.lang(), fee)
      : this.text(CHARGED.includes(r.state) ? 'consoleFeeCharged' : 'consoleNoFee');
    this.$('console-shared').textContent = sharedText(this, r) || this.text('consoleSharedNothing');

    // The shared picture: fetched once per request (each look is written to the customer's
    // history), and only while the request is open.
    const figure = this.$('console-snapshot-figure');
    const src = `/api/ops/dispatch-requests/${r.id}/snapshot`;
    if (open && r.has_snapshot) {
      if (img.getAttribute('src') !== src) img.src = src;
      figure.hidden = false;
    } else {
      img.removeAttribute('src');
      figure.hidden = true;
    }
    this.$('console-snapshot-waiting').hidden = !(open && r.share_snapshot && !r.has_snapshot);
    // The shared clip: fetched only when played (each look is written to the customer's
    // history), and only while the request is open.
    const clip = this.$('console-clip');
    const shared = open && d.clip;
    if (shared) {
      if (clip.getAttribute('src') !== d.clip.url) clip.src = d.clip.url;
      this.$('console-clip-caption').textContent = this.text('consoleClipCaption', { at: Math.round(d.clip.event_at_ms / 1000) });
    } else if (clip.hasAttribute('src')) {
      clip.removeAttribute('src');
      clip.load();
    }
    this.$('console-clip-figure').hidden = !shared;
    this.$('console-clip-waiting').hidden = !(open && d.clip_coming);
    const live = open && r.share_live;
    this.$('console-live').hidden = !live;
    // The share ends with the request (the relay closes the session too), or another
    // request was opened.
    if (this.watching && (!live || this.watching !== r.id)) this.stopLive(this.watching === r.id && !open);

    // The step this state allows.
    this.$('console-accept').hidden = r.state !== 'requested';
    this.$('console-assign-form').hidden = r.state !== 'accepted';
    this.$('console-arrive').hidden = !DRIVING.includes(r.state);
    this.$('console-complete-form').hidden = r.state !== 'arrived';
    if (r.state === 'accepted') this.renderGuardSelect();

    // Who could go, the first to arrive first.
    const proposals = d.proposals || [];
    this.$('console-proposals-section').hidden = !open || !d.customer;
    this.$('console-estimate').textContent = d.guard_speed_kmh
      ? this.text('consoleEstimate', { speed: d.guard_speed_kmh })
      : '';
    this.$('console-no-proposals').hidden = proposals.length > 0;
    this.$('console-proposals').replaceChildren(...proposals.map((p) => {
      const li = document.createElement('li');
      li.dataset.guardId = p.guard_id;
      li.textContent = this.proposalText(p);
      return li;
    }));

    const when = (at) => formatTime(this.lang(), at, 'full');
    this.$('console-steps').replaceChildren(...(d.steps || []).map((s) => {
      const li = document.createElement('li');
      const time = document.createElement('time');
      time.dateTime = s.at;
      time.textContent = when(s.at);
      const what = document.createElement('span');
      what.className = 'what';
      what.textContent = this.text(`consoleState.${s.to_state}`);
      const who = document.createElement('span');
      who.className = 'muted';
      who.textContent = s.actor_name;
      li.append(time, what, who);
      return li;
    }));
  }

  proposalText(p) {
    const km = new Intl.NumberFormat(this.lang(), { maximumFractionDigits: 1 }).format(p.distance_km);
    return this.text('consoleProposal', { name: p.name || '', km, min: p.eta_minutes });
  }

  // The guards one may send: the proposals (nearest first, the first chosen), then every
  // other free guard of the center.
  renderGuardSelect() {
    const select = this.$('console-guard-select');
    const chosen = select.value;
    const proposals = (this.detail && this.detail.proposals) || [];
    const proposed = new Set(proposals.map((p) => p.guard_id));
    const options = [];
    if (proposals.length) {
      const group = document.createElement('optgroup');
      group.label = this.text('consoleProposals');
      for (const p of proposals) group.append(option(p.guard_id, this.proposalText(p)));
      options.push(group);
    }
    const others = this.guards.filter((g) => g.busy_with === null && !proposed.has(g.id));
    if (others.length) {
      const group = document.createElement('optgroup');
      group.label = this.text('consoleOtherGuards');
      for (const g of others) group.append(option(g.id, g.name));
      options.push(group);
    }
    select.replaceChildren(...options);
    if (chosen && [...select.options].some((o) => o.value === chosen)) select.value = chosen;
    this.$('console-assign').disabled = select.options.length === 0;
    this.$('console-no-guard').hidden = select.options.length > 0;
  }

  async loadGuards() {
    const { resp, data } = await api('GET', '/api/ops/guards').catch(() => ({ resp: { ok: false } }));
    if (!resp.ok || !this.feed) return;
    this.guards = data;
    this.renderGuards();
    if (this.detail && this.detail.request.state === 'accepted') this.renderGuardSelect();
  }

  // The center's guards: free or on which request, where last seen, and a form to set where
  // one is (a guard who called in).
  renderGuards() {
    const list = this.$('console-guards');
    this.$('console-guards-empty').hidden = this.guards.length > 0;
    const when = (at) => formatTime(this.lang(), at, 'datetime');
    list.replaceChildren(...this.guards.map((g) => {
      const li = document.createElement('li');
      li.dataset.guardId = g.id;
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = g.name;
      const busy = document.createElement('span');
      busy.className = g.busy_with === null ? 'badge free' : 'badge';
      busy.textContent = g.busy_with === null
        ? this.text('consoleGuardFree')
        : this.text('consoleGuardBusy', { id: g.busy_with });
      const where = document.createElement('span');
      where.className = 'muted position';
      where.textContent = g.position
        ? this.text('consolePosition', {
          lat: g.position.lat.toFixed(5), lon: g.position.lon.toFixed(5),
          t: g.seen_at ? when(g.seen_at) : '—',
        })
        : this.text('consoleNoPosition');
      li.append(name, busy, where);
      if (g.position) li.append(this.mapLink(g.position, this.text('consoleMapGuard', { name: g.name })));
      const onMap = document.createElement('button');
      onMap.type = 'button';
      onMap.className = 'secondary set-on-map';
      onMap.textContent = this.text('consoleSetOnMap');
      onMap.addEventListener('click', () => this.guardMap.open(g, this.guards, this.openHome()));
      li.append(onMap, this.positionForm(g), this.phoneControls(g));
      return li;
    }));
  }

  // The guard's phone: a single-use sign-in link with its QR code, and, while a phone is
  // signed in, signing it out at once.
  phoneControls(g) {
    const box = document.createElement('span');
    box.className = 'phone-controls';
    const state = document.createElement('span');
    state.className = g.signed_in ? 'badge free' : 'badge off';
    state.textContent = this.text(g.signed_in ? 'consolePhoneSignedIn' : 'consolePhoneNone');
    const link = document.createElement('button');
    link.type = 'button';
    link.className = 'secondary sign-in-link';
    link.textContent = this.text('consolePhoneLink');
    link.setAttribute('aria-label', this.text('consolePhoneLinkFor', { name: g.name }));
    link.addEventListener('click', () => this.issueSignInLink(g));
    box.append(state, link);
    if (g.signed_in) {
      const out = document.createElement('button');
      out.type = 'button';
      out.className = 'secondary sign-out-phone';
      out.textContent = this.text('consolePhoneRevoke');
      out.setAttribute('aria-label', this.text('consolePhoneRevokeFor', { name: g.name }));
      out.addEventListener('click', async () => {
        out.disabled = true;
        const { resp, data } = await api('DELETE', `/api/ops/guards/${g.id}/sign-ins`)
          .catch(() => ({ resp: null, data: null }));
        if (resp && !resp.ok) this.showError(errorText(this.lang(), resp, data));
        this.loadGuards();
      });
      box.append(out);
    }
    return box;
  }

  // Shows a new sign-in link for guard `g`: its QR code for the phone to scan, the link to
  // send, and until when it works. Closing the dialog forgets it.
  async issueSignInLink(g) {
    const dialog = this.$('sign-in-link-dialog');
    const { resp, data } = await api('POST', `/api/ops/guards/${g.id}/sign-in-link`)
      .catch(() => ({ resp: null, data: null }));
    if (!resp || !resp.ok) {
      this.showError(resp ? errorText(this.lang(), resp, data) : this.text('networkError'));
      return;
    }
    this.$('sign-in-link-title').textContent = this.text('consolePhoneLinkTitle', { name: g.name });
    const svg = new DOMParser().parseFromString(data.qr_svg, 'image/svg+xml').documentElement;
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', this.text('consolePhoneQr'));
    this.$('sign-in-link-qr').replaceChildren(document.importNode(svg, true));
    const url = this.$('sign-in-link-url');
    url.value = data.url;
    this.$('sign-in-link-until').textContent = this.text('consolePhoneLinkUntil', {
      t: formatTime(this.lang(), data.expires_at, 'time'),
    });
    dialog.dataset.guardId = g.id;
    dialog.showModal();
  }

  // The open request's home, { lat, lon, address }, while the console shows its customer.
  openHome() {
    const c = this.detail?.customer;
    return c?.location ? { ...c.location, address: c.address } : null;
  }

  // A link that opens `at` on a map (a new tab), named for what is there.
  mapLink(at, label) {
    const a = document.createElement('a');
    a.href = `https://www.openstreetmap.org/?mlat=${at.lat}&mlon=${at.lon}#map=17/${at.lat}/${at.lon}`;
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    a.className = 'map-link';
    a.textContent = label;
    return a;
  }

  positionForm(g) {
    const form = document.createElement('form');
    form.className = 'inline-form position-form';
    const field = (key, value, min, max) => {
      const label = document.createElement('label');
      const span = document.createElement('span');
      span.textContent = this.text(key);
      const input = document.createElement('input');
      input.type = 'number';
      input.step = 'any';
      input.min = String(min);
      input.max = String(max);
      input.required = true;
      input.name = key === 'consoleLat' ? 'lat' : 'lon';
      if (value !== undefined) input.value = String(value);
      label.append(span, input);
      return label;
    };
    const save = document.createElement('button');
    save.type = 'submit';
    save.className = 'secondary';
    save.textContent = this.text('consoleSetPosition');
    const error = document.createElement('p');
    error.className = 'error';
    error.setAttribute('role', 'alert');
    error.hidden = true;
    form.append(field('consoleLat', g.position?.lat, -90, 90), field('consoleLon', g.position?.lon, -180, 180), save, error);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const lat = Number(form.elements.lat.value);
      const lon = Number(form.elements.lon.value);
      save.disabled = true;
      const { resp, data } = await api('PUT', `/api/ops/guards/${g.id}/position`, { lat, lon })
        .catch(() => ({ resp: null, data: null }));
      save.disabled = false;
      if (resp && resp.ok) return this.loadGuards();
      error.textContent = resp ? errorText(this.lang(), resp, data) : this.text('networkError');
      error.hidden = false;
    });
    return form;
  }
}

function option(value, label) {
  const o = document.createElement('option');
  o.value = String(value);
  o.textContent = label;
  return o;
}

// What the customer shares with the center for request `r`, in words.
function sharedText(c, r) {
  const parts = [];
  if (r.share_snapshot) parts.push(c.text('consoleSharedPicture'));
  if (r.share_live) parts.push(c.text('consoleSharedLive'));
  if (r.shares_clip) parts.push(c.text('consoleSharedClip'));
  return parts.join(' · ');
}

// An age as m:ss, or h:mm:ss from an hour on.
function age(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

function clock(lang, at) {
  return formatTime(lang, at, 'time');
}

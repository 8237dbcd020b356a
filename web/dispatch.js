// Guard dispatch, the customer's side: the "Request a guard" button and its confirmation on a
// dispatch-plan camera's live view, the request's state followed live (with the fee it costs
// and a cancel while that is still possible), and the list of requests and fees on the
// cameras view. User text (camera names, the relay's error messages) is only set as text.
import { api, errorText } from './api.js';
import { may } from './household.js';
import { formatTime, t, yen } from './i18n.js';

const $ = (id) => document.getElementById(id);
// The states in which the guard center still works on a request.
const OPEN = ['requested', 'accepted', 'assigned', 'en_route', 'arrived'];
// The states the customer may cancel from (free from `requested` only).
const CANCELLABLE = ['requested', 'accepted', 'assigned', 'en_route'];
// A closed request stays on its camera's live view this long after its last change.
const SHOW_CLOSED_MS = 24 * 3600 * 1000;
const JPEG_QUALITY = 0.85;

export class GuardRequests {
  // lang(): the page's language now.
  constructor(lang) {
    this.lang = lang;
    this.requests = [];   // the customer's, newest first
    this.charges = [];
    this.cameras = [];
    this.camera = null;   // the camera whose live view is on screen
    this.terms = null;
    this.feed = null;
    this.message = null;  // { kind, key, vars } under the status: what became of the picture
    this.bind();
  }

  text(key, vars) {
    return t(this.lang(), key, vars);
  }

  bind() {
    $('dispatch-request').addEventListener('click', () => this.openDialog());
    $('dispatch-form').addEventListener('submit', (e) => this.send(e));
    $('dispatch-back').addEventListener('click', () => $('dispatch-dialog').close());
    $('dispatch-cancel').addEventListener('click', () => this.cancel());
    $('home-notes-form').addEventListener('submit', (e) => this.saveHome(e));
  }

  // The home as the guards see it: the contract's address, and the customer's own notes.
  async loadHome() {
    const { resp, data } = await api('GET', '/api/home').catch(() => ({ resp: { ok: false } }));
    if (!resp.ok) return;
    $('home-address').textContent = data.address || this.text('homeNoAddress');
    $('home-phone').value = data.phone || '';
    $('home-entry').value = data.entry || '';
    $('home-key-holder').value = data.key_holder || '';
  }

  async saveHome(ev) {
    ev.preventDefault();
    const status = $('home-notes-status');
    const body = { phone: $('home-phone').value, entry: $('home-entry').value, key_holder: $('home-key-holder').value };
    const { resp, data } = await api('PUT', '/api/home', body).catch(() => ({ resp: { ok: false }, data: null }));
    status.textContent = resp.ok ? this.text('homeSaved')
      : resp.status ? errorText(this.lang(), resp, data) : this.text('networkError');
    status.classList.toggle('error', !resp.ok);
  }

  // Follows the customer's requests live: every (re)connection of the feed fetches the list,
  // so nothing that changed while it was down is missed.
  // me: the account (its guard center is named in the confirmation).
  start(me) {
    this.center = me.guard_center;
    // A household member follows requests; the fees and the home's notes are the holder's.
    this.holder = me.role === 'customer';
    if (this.feed) return this.render();
    if (this.holder) this.loadHome();
    const feed = new EventSource('/api/dispatch-requests/live');
    feed.addEventListener('open', () => this.reload());
    feed.addEventListener('resync', () => this.reload());
    feed.addEventListener('request', (e) => {
      try { this.upsert(JSON.parse(e.data)); } catch { /* a bad message changes nothing */ }
    });
    this.feed = feed;
    this.render();
  }

  // Logged out: nothing of the account stays.
  stop() {
    if (this.feed) this.feed.close();
    this.feed = null;
    this.requests = [];
    this.charges = [];
    this.cameras = [];
    this.camera = null;
    this.message = null;
    if ($('dispatch-dialog').open) $('dispatch-dialog').close();
    for (const id of ['dispatch-note', 'home-phone', 'home-entry', 'home-key-holder']) $(id).value = '';
    for (const id of ['dispatch-list', 'charges', 'charges-total', 'dispatch-state', 'dispatch-fee', 'dispatch-when', 'dispatch-message', 'dispatch-lead', 'dispatch-address', 'dispatch-eta', 'dispatch-report-text', 'home-address', 'home-notes-status']) {
      $(id).replaceChildren();
    }
    this.render();
  }

  setCameras(cameras) {
    this.cameras = cameras;
    if (this.camera) this.camera = cameras.find((c) => c.id === this.camera.id) || this.camera;
    this.render();
  }

  showCamera(camera) {
    if (!this.camera || this.camera.id !== camera.id) this.message = null;
    this.camera = camera;
    this.render();
  }

  hideCamera() {
    this.camera = null;
    this.message = null;
    if ($('dispatch-dialog').open) $('dispatch-dialog').close();
    this.render();
  }

  async reload() {
    const none = Promise.resolve({ resp: { ok: false } });
    const [list, charges] = await Promise.all([
      api('GET', '/api/dispatch-requests'),
      this.holder ? api('GET', '/api/charges') : none,
    ]).catch(() => [{ resp: { ok: false } }, { resp: { ok: false } }]);
    if (!this.feed) return;
    if (list.resp.ok) this.requests = list.data;
    if (charges.resp.ok) this.charges = charges.data;
    this.render();
  }

  async reloadCharges() {
    if (!this.holder) return;
    const { resp, data } = await api('GET', '/api/charges').catch(() => ({ resp: { ok: false } }));
    if (resp.ok && this.feed) {
      this.charges = data;
      this.render();
    }
  }

  // A request as it is now (from the feed or an answer): replaces the one with its id.
  upsert(d) {
    const old = this.requests.find((r) => r.id === d.id);
    this.requests = [d, ...this.requests.filter((r) => r.id !== d.id)].sort((a, b) => b.id - a.id);
    if (!old || old.fee_due_yen !== d.fee_due_yen) this.reloadCharges();
    this.render();
  }

  // The request shown on `camera`'s live view: its open one, else one closed lately.
  current(camera) {
    const mine = this.requests.filter((d) => d.camera_id === camera.id);
    return mine.find((d) => OPEN.includes(d.state))
      || mine.find((d) => Date.now() - Date.parse(d.updated_at) < SHOW_CLOSED_MS)
      || null;
  }

  async loadTerms() {
    const { resp, data } = await api('GET', '/api/dispatch-terms').catch(() => ({ resp: { ok: false } }));
    this.terms = resp.ok ? data : null;
    this.renderTerms();
    return this.terms;
  }

  renderTerms() {
    const fee = $('dispatch-fee-amount');
    if (!this.terms) {
      fee.textContent = '';
      delete fee.dataset.feeYen;
      return;
    }
    const amount = yen(this.lang(), this.terms.fee_yen);
    fee.textContent = this.terms.tax_included ? this.text('feeTaxIncluded', { fee: amount }) : amount;
    fee.dataset.feeYen = this.terms.fee_yen;
    // Where the guard goes, so that a wrong or missing address is seen before anyone drives.
    $('dispatch-address').textContent = this.terms.address
      ? this.text('dispatchAddress', { address: this.terms.address })
      : this.text('dispatchNoAddress');
  }

  async openDialog() {
    const dialog = $('dispatch-dialog');
    this.showDialogError('');
    $('dispatch-send').disabled = true;
    $('dispatch-lead').textContent = this.text('dispatchConfirmLead', { center: this.text(this.center) });
    dialog.showModal();
    this.offerClip();
    // The fee is asked for each time: the page sends back the one it showed.
    const terms = await this.loadTerms();
    if (!dialog.open) return;
    if (!terms) {
      this.showDialogError(this.text('dispatchTermsError'));
      return;
    }
    $('dispatch-send').disabled = false;
  }

  // The clip of the camera's latest event, offered to share when it has one (or one on its
  // way) from the last hour: what the customer most likely asks a guard about.
  async offerClip() {
    const camera = this.camera;
    this.clipEvent = null;
    $('dispatch-share-clip-label').hidden = true;
    $('dispatch-share-clip').checked = false;
    const { resp, data } = await api('GET', `/api/cameras/${camera.id}/events?limit=10`).catch(() => ({ resp: { ok: false } }));
    if (!resp.ok || this.camera !== camera) return;
    const hour = Date.now() - 3600 * 1000;
    const e = data.find((ev) => (ev.clip || ev.clip_coming) && Date.parse(ev.at) >= hour);
    if (!e) return;
    this.clipEvent = e.id;
    $('dispatch-share-clip-text').textContent = this.text('dispatchShareClip', { t: formatTime(this.lang(), e.at, 'time') });
    $('dispatch-share-clip-label').hidden = false;
  }

  showDialogError(message) {
    const el = $('dispatch-dialog-error');
    el.textContent = message;
    el.hidden = !message;
  }

  async send(ev) {
    ev.preventDefault();
    const camera = this.camera;
    if (!camera || !this.terms) return;
    const shareSnapshot = $('dispatch-share-snapshot').checked;
    const button = $('dispatch-send');
    button.disabled = true;
    button.textContent = this.text('dispatchSending');
    this.showDialogError('');
    try {
      // The picture of the moment the customer decided (drawn now, encoded while the request
      // goes out), uploaded once the request exists.
      const picture = shareSnapshot ? capture($('video')) : null;
      const { resp, data } = await api('POST', '/api/dispatch-requests', {
        camera_id: camera.id,
        note: $('dispatch-note').value,
        share_snapshot: shareSnapshot,
        share_live: $('dispatch-share-live').checked,
        share_clip_of: $('dispatch-share-clip').checked ? this.clipEvent : undefined,
        fee_yen: this.terms.fee_yen,
      });
      if (!resp.ok) {
        this.showDialogError(errorText(this.lang(), resp, data));
        // The fee may have changed: show the one that holds now.
        if (resp.status === 409) await this.loadTerms();
        return;
      }
      $('dispatch-dialog').close();
      $('dispatch-form').reset();
      this.message = null;
      this.upsert(data);
      if (shareSnapshot) await this.sharePicture(data.id, await picture);
    } catch {
      this.showDialogError(this.text('networkError'));
    } finally {
      button.disabled = !this.terms;
      button.textContent = this.text('dispatchSend');
    }
  }

  async sharePicture(id, picture) {
    if (!picture) {
      this.say('warning', 'dispatchNoFrame');
      return;
    }
    const resp = await fetch(`/api/dispatch-requests/${id}/snapshot`, {
      method: 'PUT',
      headers: { 'Content-Type': 'image/jpeg' },
      body: picture,
      credentials: 'same-origin',
    }).catch(() => null);
    if (resp && resp.ok) this.say('shared', 'dispatchSnapshotShared');
    else if (!resp) this.say('warning', 'dispatchSnapshotFailed', { error: this.text('networkError') });
    else this.say('warning', 'dispatchSnapshotFailed', { error: errorText(this.lang(), resp, await resp.json().catch(() => null)) });
  }

  say(kind, key, vars = {}) {
    this.message = { kind, key, vars };
    this.render();
  }

  async cancel() {
    const d = this.camera && this.current(this.camera);
    if (!d || !CANCELLABLE.includes(d.state)) return;
    const question = d.state === 'requested'
      ? this.text('dispatchCancelFree')
      : this.text('dispatchCancelPaid', { fee: yen(this.lang(), d.fee_due_yen || d.fee_yen) });
    if (!window.confirm(question)) return;
    const button = $('dispatch-cancel');
    button.disabled = true;
    try {
      const { resp, data } = await api('POST', `/api/dispatch-requests/${d.id}/cancel`);
      if (resp.ok) {
        this.message = null;
        this.upsert(data);
      } else {
        this.say('error', 'dispatchCancelError', { error: errorText(this.lang(), resp, data) });
      }
    } catch {
      this.say('error', 'dispatchCancelError', { error: this.text('networkError') });
    } finally {
      button.disabled = false;
    }
  }

  // The state in words; a cancelled request says whether the fee is due.
  describe(d) {
    if (d.state === 'cancelled') {
      return d.fee_due_yen > 0
        ? this.text('dispatchCancelledFee', { fee: yen(this.lang(), d.fee_due_yen) })
        : this.text('dispatchCancelledFree');
    }
    return this.text(`dispatch.state.${d.state}`, { guard: d.guard_name || '' });
  }

  feeLine(d) {
    if (d.state === 'cancelled') return '';
    if (d.fee_due_yen > 0) return this.text('dispatchFeeDue', { fee: yen(this.lang(), d.fee_due_yen) });
    return this.text('dispatchFeeNotYet');
  }

  render() {
    this.renderLive();
    this.renderList();
  }

  relabel() {
    this.renderTerms();
    if (this.center) $('dispatch-lead').textContent = this.text('dispatchConfirmLead', { center: this.text(this.center) });
    this.render();
  }

  // While the guard is on the way: when expected, moved as the guard's phone reports; '' else.
  etaText(d) {
    if (!['assigned', 'en_route'].includes(d.state) || !d.eta) return '';
    return this.text('dispatchEta', {
      t: formatTime(this.lang(), d.eta, 'time'),
      min: Math.max(1, Math.round((Date.parse(d.eta) - Date.now()) / 60000)),
    });
  }

  // The live view's part: the button, or the request's state, fee and cancel.
  renderLive() {
    const cam = this.camera;
    const section = $('dispatch');
    section.hidden = !cam || cam.plan !== 'dispatch' || !may(cam, 'dispatch');
    if (section.hidden) return;
    const d = this.current(cam);
    const open = d && OPEN.includes(d.state);
    $('dispatch-request').hidden = !!open;
    const status = $('dispatch-status');
    status.hidden = !d;
    if (d) {
      status.dataset.requestId = d.id;
      status.dataset.state = d.state;
      status.dataset.feeDue = d.fee_due_yen;
      $('dispatch-state').textContent = this.describe(d);
      const eta = $('dispatch-eta');
      eta.textContent = this.etaText(d);
      eta.hidden = !eta.textContent;
      $('dispatch-report').hidden = !(d.state === 'completed' && d.report);
      $('dispatch-report-text').textContent = d.report || '';
      $('dispatch-fee').textContent = this.feeLine(d);
      $('dispatch-fee').hidden = !this.feeLine(d);
      $('dispatch-when').textContent = this.text('dispatchRequestedAt', { id: d.id, t: formatTime(this.lang(), d.created_at, 'time') });
      $('dispatch-cancel').hidden = !CANCELLABLE.includes(d.state);
    } else {
      for (const k of ['requestId', 'state', 'feeDue']) delete status.dataset[k];
    }
    const msg = $('dispatch-message');
    msg.hidden = !this.message;
    msg.dataset.kind = this.message ? this.message.kind : '';
    msg.textContent = this.message ? this.text(this.message.key, this.message.vars) : '';
  }

  // The cameras view's part: every request with its state and fee, and the fees owed.
  renderList() {
    const section = $('dispatch-section');
    const any = this.cameras.some((c) => c.plan === 'dispatch' && may(c, 'dispatch'))
      || this.requests.length > 0 || this.charges.length > 0;
    section.hidden = !this.feed || !any;
    if (section.hidden) return;
    const when = (at) => formatTime(this.lang(), at, 'datetime');
    const list = $('dispatch-list');
    list.replaceChildren();
    $('dispatch-list-empty').hidden = this.requests.length > 0;
    for (const d of this.requests) {
      const li = document.createElement('li');
      li.dataset.requestId = d.id;
      li.dataset.state = d.state;
      li.dataset.feeDue = d.fee_due_yen;
      const time = document.createElement('time');
      time.dateTime = d.created_at;
      time.textContent = when(d.created_at);
      const camera = document.createElement('span');
      camera.className = 'camera';
      camera.textContent = d.camera_name;
      const state = document.createElement('span');
      state.className = `state ${OPEN.includes(d.state) ? 'open' : 'closed'}`;
      state.textContent = this.describe(d);
      const fee = document.createElement('span');
      fee.className = 'muted';
      fee.textContent = this.feeLine(d);
      li.append(time, camera, state, fee);
      const eta = this.etaText(d);
      if (eta) {
        const line = document.createElement('span');
        line.className = 'eta';
        line.textContent = eta;
        li.append(line);
      }
      list.append(li);
    }
    const charges = $('charges');
    charges.replaceChildren();
    $('charges-empty').hidden = this.charges.length > 0;
    for (const c of this.charges) {
      const li = document.createElement('li');
      li.dataset.chargeId = c.id;
      li.textContent = this.text('chargeItem', {
        amount: yen(this.lang(), c.amount_yen), request: c.request_id, t: when(c.charged_at),
      });
      charges.append(li);
    }
    const total = this.charges.reduce((sum, c) => sum + c.amount_yen, 0);
    $('charges-total').hidden = this.charges.length === 0;
    $('charges-total').textContent = this.text('chargesTotal', { amount: yen(this.lang(), total) });
  }
}

// The picture the <video> shows now, as a JPEG; null when it has shown none yet.
function capture(video) {
  if (!video.videoWidth || !video.videoHeight) return Promise.resolve(null);
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext('2d').drawImage(video, 0, 0);
  return new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', JPEG_QUALITY));
}

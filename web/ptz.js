// Pan-tilt controls on a pan-tilt camera's live view: an arrow pad and, while the picture has
// the focus, the keyboard's arrow keys; click-to-centre on the picture, presets. A short press
// turns one visible step; a press held longer turns at the chosen speed until let go. A held
// move repeats well within the relay's dead-man timeout, so the camera stops by itself when
// this page goes away without saying so.

// Share of the camera's top speed a held arrow turns at. Normal is gentle enough to stop where
// one wants (the camera's whole range takes several seconds); fast is for looking around.
const SPEEDS = { slow: 0.1, normal: 0.25, fast: 0.5 };
// A short press turns this far (a tenth of the range either side of centre: clearly visible).
const STEP = 0.1;
// A press held longer than this is a hold, not a step.
const HOLD_AFTER_MS = 300;
const DIRS = { left: [-1, 0], right: [1, 0], up: [0, 1], down: [0, -1] };
const KEYS = { ArrowLeft: 'left', ArrowRight: 'right', ArrowUp: 'up', ArrowDown: 'down' };
const SPEED_KEY = 'eyeward.ptzSpeed';

export class PanTiltControls {
  // root: the #ptz section; player: the focusable element around the live <video>;
  // video: the <video>; text(key, vars): the page's words.
  constructor(root, player, video, text) {
    this.root = root;
    this.player = player;
    this.video = video;
    this.text = text;
    this.cameraId = null;
    this.deadmanMs = 1000;
    this.pressed = null;
    this.held = null;
    this.repeat = null;
    this.inflight = false;
    this.queued = null;
    this.feed = null;
    this.state = null;
    this.bind();
  }

  $(sel) {
    return this.root.querySelector(sel);
  }

  bind() {
    for (const button of this.root.querySelectorAll('[data-dir]')) {
      const dir = button.dataset.dir;
      button.addEventListener('pointerdown', (e) => {
        if (e.button !== 0) return;
        e.preventDefault();
        button.setPointerCapture(e.pointerId);
        this.press(dir);
      });
      button.addEventListener('pointerup', () => this.unpress(dir));
      for (const end of ['pointercancel', 'lostpointercapture']) {
        button.addEventListener(end, () => this.release());
      }
      // Enter or Space on a focused arrow (click with no pointer): one step.
      button.addEventListener('click', (e) => {
        if (e.detail === 0) this.step(dir);
      });
    }
    this.$('#ptz-home').addEventListener('click', () => this.send({ action: 'preset', name: 'home' }));
    // The arrow keys turn the camera only while the picture has the focus: anywhere else on
    // the page they scroll, as they always do.
    this.player.addEventListener('keydown', (e) => {
      const dir = KEYS[e.key];
      if (!dir || !this.active() || e.altKey || e.ctrlKey || e.metaKey) return;
      e.preventDefault();
      if (!e.repeat) this.press(dir);
    });
    this.player.addEventListener('keyup', (e) => {
      if (KEYS[e.key]) this.unpress(KEYS[e.key]);
    });
    this.player.addEventListener('blur', () => this.release());
    // Whatever takes the keys or the pointer away from the page ends the move.
    window.addEventListener('blur', () => this.release());
    document.addEventListener('visibilitychange', () => { if (document.hidden) this.release(); });
    window.addEventListener('pagehide', () => this.release(true));
    this.video.addEventListener('click', (e) => this.centre(e));
    const saved = localStorage.getItem(SPEED_KEY);
    for (const radio of this.root.querySelectorAll('input[name="ptz-speed"]')) {
      if (radio.value === saved) radio.checked = true;
      radio.addEventListener('change', () => localStorage.setItem(SPEED_KEY, radio.value));
    }
    this.$('#preset-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const input = this.$('#preset-name');
      const name = input.value.trim();
      if (!name) return;
      this.send({ action: 'save_preset', name }).then((ok) => { if (ok) input.value = ''; });
    });
  }

  speed() {
    const checked = this.root.querySelector('input[name="ptz-speed"]:checked');
    return SPEEDS[checked ? checked.value : 'normal'] ?? SPEEDS.normal;
  }

  // An arrow goes down: a step if it comes up soon, a hold if it stays down.
  press(dir) {
    if (!this.active() || this.pressed) return;
    this.pressed = { dir, timer: setTimeout(() => { this.pressed.timer = null; this.hold(dir); }, HOLD_AFTER_MS) };
  }

  unpress(dir) {
    if (!this.pressed || this.pressed.dir !== dir) return;
    const { timer } = this.pressed;
    this.pressed = null;
    if (timer) {
      clearTimeout(timer);
      this.step(dir);
    } else {
      this.release();
    }
  }

  step(dir) {
    if (!this.active()) return;
    const [p, t] = DIRS[dir];
    this.send({ action: 'step', pan: p * STEP, tilt: t * STEP });
  }

  active() {
    return this.cameraId !== null && !this.root.hidden;
  }

  // Shows the controls for `cameraId` and follows where the camera looks.
  async open(cameraId) {
    if (this.cameraId === cameraId) return;
    this.close();
    this.cameraId = cameraId;
    this.root.hidden = false;
    this.render(null);
    this.showError('');
    const resp = await fetch(`/api/cameras/${cameraId}/ptz`, { credentials: 'same-origin' }).catch(() => null);
    if (resp && resp.ok && this.cameraId === cameraId) {
      const data = await resp.json();
      this.deadmanMs = data.deadman_ms || this.deadmanMs;
      this.render(data.state);
    }
    if (this.cameraId !== cameraId) return;
    this.feed = new EventSource(`/api/cameras/${cameraId}/ptz/live`);
    this.feed.addEventListener('state', (e) => {
      try { this.render(JSON.parse(e.data)); } catch { /* a bad message changes nothing */ }
    });
  }

  // Hides the controls (another camera, a fixed one, the list); a held move stops.
  close() {
    this.release();
    if (this.feed) this.feed.close();
    this.feed = null;
    this.cameraId = null;
    this.root.hidden = true;
  }

  hold(dir) {
    if (!this.active() || this.held === dir) return;
    this.held = dir;
    const [p, t] = DIRS[dir];
    const speed = this.speed();
    const move = { action: 'move', pan: p * speed, tilt: t * speed };
    this.send(move);
    clearInterval(this.repeat);
    this.repeat = setInterval(() => this.send(move), Math.max(150, this.deadmanMs / 3));
    for (const b of this.root.querySelectorAll('[data-dir]')) b.classList.toggle('held', b.dataset.dir === dir);
  }

  // Ends a press or a held move; `leaving`: the page is going away, so the request must
  // outlive it.
  release(leaving = false) {
    if (this.pressed) {
      clearTimeout(this.pressed.timer);
      this.pressed = null;
    }
    if (!this.held) return;
    this.held = null;
    clearInterval(this.repeat);
    this.repeat = null;
    for (const b of this.root.querySelectorAll('[data-dir]')) b.classList.remove('held');
    if (leaving) this.post({ action: 'stop' }, true);
    else this.send({ action: 'stop' });
  }

  // Click-to-centre: the point clicked in the picture (not the black bars around it). Not in
  // full screen, where a click is to bring the controls back, not to aim.
  centre(e) {
    if (!this.active() || !this.video.videoWidth || document.fullscreenElement) return;
    const r = this.video.getBoundingClientRect();
    const scale = Math.min(r.width / this.video.videoWidth, r.height / this.video.videoHeight);
    const w = this.video.videoWidth * scale;
    const h = this.video.videoHeight * scale;
    const x = (e.clientX - r.left - (r.width - w) / 2) / w;
    const y = (e.clientY - r.top - (r.height - h) / 2) / h;
    if (x < 0 || x > 1 || y < 0 || y > 1) return;
    this.send({ action: 'centre', x: Math.round(x * 1000) / 1000, y: Math.round(y * 1000) / 1000 });
  }

  // One command at a time, in order; while one is on its way only the newest waiting one
  // is kept (a held button's repeats, then its stop). Resolves true if it was carried out.
  async send(command) {
    if (this.inflight) {
      this.queued = command;
      return true;
    }
    this.inflight = true;
    let ok = false;
    try {
      ok = await this.post(command);
    } finally {
      this.inflight = false;
    }
    const next = this.queued;
    this.queued = null;
    if (next) this.send(next);
    return ok;
  }

  async post(command, keepalive = false) {
    const cameraId = this.cameraId;
    if (cameraId === null) return false;
    const resp = await fetch(`/api/cameras/${cameraId}/ptz`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(command),
      credentials: 'same-origin',
      keepalive,
    }).catch(() => null);
    if (keepalive || cameraId !== this.cameraId) return !!(resp && resp.ok);
    const data = resp ? await resp.json().catch(() => ({})) : {};
    if (resp && resp.ok) {
      this.showError('');
      this.render(data.state);
      return true;
    }
    if (!resp) this.showError(this.text('networkError'));
    else if (resp.status === 429) this.showError(this.text('ptzBusy'));
    else this.showError(data.error || resp.statusText);
    return false;
  }

  showError(message) {
    const el = this.$('#ptz-error');
    el.textContent = message;
    el.hidden = !message;
  }

  // Where the camera looks: a dot on a map of its range, the numbers, and the presets.
  render(state) {
    this.state = state;
    const dot = this.$('#ptz-dot');
    const pos = this.$('#ptz-position');
    if (!state) {
      dot.hidden = true;
      pos.textContent = this.text('ptzUnknown');
      this.$('#ptz-map').setAttribute('aria-label', `${this.text('ptzMap')}: ${pos.textContent}`);
      this.renderPresets([]);
      return;
    }
    dot.hidden = false;
    dot.style.left = `${((state.pan + 1) / 2) * 100}%`;
    dot.style.top = `${(1 - (state.tilt + 1) / 2) * 100}%`;
    const fmt = (v) => (v > 0 ? '+' : '') + v.toFixed(2);
    pos.textContent = this.text(state.moving ? 'ptzMoving' : 'ptzPosition', { pan: fmt(state.pan), tilt: fmt(state.tilt) });
    this.$('#ptz-map').setAttribute('aria-label', `${this.text('ptzMap')}: ${pos.textContent}`);
    pos.dataset.pan = state.pan;
    pos.dataset.tilt = state.tilt;
    pos.dataset.moving = state.moving;
    this.renderPresets(state.presets || []);
  }

  renderPresets(names) {
    const list = this.$('#ptz-presets');
    list.replaceChildren();
    for (const name of names) {
      const li = document.createElement('li');
      const go = document.createElement('button');
      go.type = 'button';
      go.className = 'secondary preset';
      go.textContent = name;
      go.addEventListener('click', () => this.send({ action: 'preset', name }));
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.className = 'secondary remove';
      remove.textContent = '×';
      remove.setAttribute('aria-label', this.text('ptzRemovePreset', { name }));
      remove.addEventListener('click', () => this.send({ action: 'remove_preset', name }));
      li.append(go, remove);
      list.append(li);
    }
  }

  // Texts rendered from state follow a language change.
  relabel() {
    this.render(this.state);
  }
}

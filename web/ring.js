// The console's ring. A new request, or the cancellation of one a guard is driving to, must
// reach an operator who is looking elsewhere: a tone, the tab's title, a desktop notification
// (once the operator allowed them) and a line on the page that screen readers announce.
// Opening the request stops its ring.

const TONE_HZ = [880, 660, 880];
const TONE_S = 0.18;

export class Ringer {
  // banner: where the line goes; open(id): shows request `id` (a notification's click).
  constructor(banner, open) {
    this.banner = banner;
    this.open = open;
    this.pending = new Map();   // request id → what rang
    this.baseTitle = document.title;
    this.audio = null;
    // Browsers let a page play sound only after a gesture: the first one makes the context.
    const unlock = () => { this.context(); };
    document.addEventListener('pointerdown', unlock, { once: true });
    document.addEventListener('keydown', unlock, { once: true });
  }

  context() {
    if (!this.audio && typeof AudioContext === 'function') this.audio = new AudioContext();
    return this.audio;
  }

  ring(id, text) {
    this.pending.set(id, text);
    this.banner.textContent = text;
    this.banner.hidden = false;
    this.title();
    this.tone();
    if (typeof Notification === 'function' && Notification.permission === 'granted') {
      const n = new Notification(text, { tag: `eyeward-request-${id}`, requireInteraction: true });
      n.addEventListener('click', () => { window.focus(); this.open(id); n.close(); });
    }
  }

  // Request `id` was opened (or is gone): its ring stops.
  clear(id) {
    this.pending.delete(id);
    const last = [...this.pending.values()].pop();
    this.banner.textContent = last || '';
    this.banner.hidden = !last;
    this.title();
  }

  clearAll() {
    for (const id of [...this.pending.keys()]) this.clear(id);
  }

  title() {
    const n = this.pending.size;
    document.title = n ? `(${n}) ${[...this.pending.values()].pop()} — ${this.baseTitle}` : this.baseTitle;
  }

  // Three short tones; where the browser still holds sound back, the page says so.
  tone() {
    const ctx = this.context();
    if (!ctx) return;
    if (ctx.state === 'suspended') ctx.resume().catch(() => {});
    const start = ctx.currentTime;
    TONE_HZ.forEach((hz, i) => {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.frequency.value = hz;
      gain.gain.value = 0.2;
      osc.connect(gain).connect(ctx.destination);
      osc.start(start + i * TONE_S * 1.5);
      osc.stop(start + i * TONE_S * 1.5 + TONE_S);
    });
    this.banner.dataset.sound = ctx.state;
  }
}

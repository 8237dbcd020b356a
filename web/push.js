// Alerts as notifications on this device (Web Push): the part of the alerts card that turns
// them on and off here, and lists the person's other devices. The browser subscribes with
// the relay's VAPID key; the relay keeps the subscription and pushes each alert it would
// mail this person, with the same rule and cooldown. The service worker (sw.js) shows them.
import { api, errorText } from './api.js';
import { formatTime, t } from './i18n.js';

const $ = (id) => document.getElementById(id);
// The relay's id of this browser's device, while it takes notifications.
const HERE = 'eyeward.push.device';

function fromB64url(s) {
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

export const pushInBrowser = () => 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;

export class PushPanel {
  constructor(lang) {
    this.lang = lang;
    this.publicKey = null;
    $('push-toggle').addEventListener('click', () => this.toggle());
  }

  // Shows the part for a person who receives alerts, in a browser that can take pushes.
  async load(shown) {
    $('push').hidden = true;
    if (!shown || !pushInBrowser()) return;
    const { resp, data } = await api('GET', '/api/push').catch(() => ({ resp: { ok: false } }));
    if (!resp.ok) return;
    this.publicKey = data.public_key;
    this.registration = await navigator.serviceWorker.register('/sw.js').catch(() => null);
    if (!this.registration) return;
    const here = await this.registration.pushManager.getSubscription().catch(() => null);
    const id = Number(localStorage.getItem(HERE));
    this.here = here && data.devices.some((d) => d.id === id) ? { sub: here, id } : null;
    this.render(data.devices);
    $('push').hidden = false;
  }

  render(devices) {
    const lang = this.lang();
    $('push-toggle').textContent = t(lang, this.here ? 'pushOff' : 'pushOn');
    const list = $('push-devices');
    list.replaceChildren();
    for (const d of devices) {
      const li = document.createElement('li');
      li.dataset.deviceId = d.id;
      const name = document.createElement('span');
      name.textContent = this.here && this.here.id === d.id ? t(lang, 'pushThisDevice') : d.service;
      const when = document.createElement('span');
      when.className = 'muted small';
      when.textContent = d.last_sent_at
        ? t(lang, 'pushLastSent', { at: formatTime(lang, d.last_sent_at) })
        : t(lang, 'pushAdded', { at: formatTime(lang, d.created_at) });
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.className = 'secondary';
      remove.textContent = t(lang, 'pushRemove');
      remove.setAttribute('aria-label', t(lang, 'pushRemoveLabel', { service: d.service }));
      remove.addEventListener('click', () => this.remove(d.id, remove));
      li.append(name, when, remove);
      list.append(li);
    }
  }

  say(text) {
    $('push-status').textContent = text || '';
  }

  async toggle() {
    const button = $('push-toggle');
    button.disabled = true;
    try {
      if (this.here) await this.remove(this.here.id, button);
      else await this.turnOn();
    } finally {
      button.disabled = false;
    }
  }

  async turnOn() {
    const lang = this.lang();
    if (await Notification.requestPermission() !== 'granted') {
      this.say(t(lang, 'pushBlocked'));
      return;
    }
    let sub;
    try {
      sub = await this.registration.pushManager.subscribe({
        userVisibleOnly: true, applicationServerKey: fromB64url(this.publicKey),
      });
    } catch {
      this.say(t(lang, 'pushUnsupported'));
      return;
    }
    const { resp, data } = await api('POST', '/api/push/devices', sub.toJSON())
      .catch(() => ({ resp: { ok: false } }));
    if (!resp.ok) {
      await sub.unsubscribe().catch(() => {});
      this.say(resp.status ? errorText(lang, resp, data) : t(lang, 'networkError'));
      return;
    }
    localStorage.setItem(HERE, String(data.id));
    this.say(t(lang, 'pushTurnedOn'));
    await this.load(true);
  }

  async remove(id, button) {
    const lang = this.lang();
    button.disabled = true;
    const { resp, data } = await api('DELETE', `/api/push/devices/${id}`).catch(() => ({ resp: { ok: false } }));
    if (this.here && this.here.id === id && (resp.ok || resp.status === 404)) {
      await this.here.sub.unsubscribe().catch(() => {});
      localStorage.removeItem(HERE);
    }
    if (resp.ok) this.say(t(lang, 'pushRemoved'));
    else this.say(resp.status ? errorText(lang, resp, data) : t(lang, 'networkError'));
    await this.load(true);
  }
}

// Arming, on the cameras view: Away / Home / Off in one tap, what that means and since when,
// the schedule's next switch; under "Schedule and camera alerts", the weekly schedule (add,
// remove) and which cameras alert in which mode. Alert mail goes out only while armed for a
// camera; motion is recorded whatever the mode. User text (camera names) is only set as text.
import { api, errorText } from './api.js';
import { dayNames, formatTime, t } from './i18n.js';

const $ = (id) => document.getElementById(id);

export class ArmingPanel {
  // lang(): the page's language now. changed(): called after the mode or a camera's switches
  // changed (the camera tiles and the history show it).
  constructor(lang, changed) {
    this.lang = lang;
    this.changed = changed;
    this.arming = null;
    this.cameras = [];
    // What the schedule list and the camera table last showed: they are rebuilt only when
    // that changes, so a refresh never takes the focus from a checkbox or a button.
    this.shown = { schedule: '', cameras: '' };
    for (const b of document.querySelectorAll('#arming .mode')) {
      b.addEventListener('click', () => this.setMode(b.dataset.mode));
    }
    $('schedule-form').addEventListener('submit', (e) => this.addSwitch(e));
  }

  text(key, vars) {
    return t(this.lang(), key, vars);
  }

  // Reads the arming again (a scheduled switch may have come), with the account's cameras.
  async load(cameras) {
    this.cameras = cameras;
    const { resp, data } = await api('GET', '/api/arming').catch(() => ({ resp: { ok: false } }));
    if (resp.ok) this.arming = data;
    this.render();
  }

  // Logged out: nothing of the account stays.
  stop() {
    this.arming = null;
    this.cameras = [];
    this.render();
  }

  // Whether `cam` mails alerts in the mode on now (true until the mode is known).
  alerting(cam) {
    if (!this.arming || !cam.alerts) return true;
    const mode = this.arming.mode;
    return mode === 'away' ? cam.alerts.away : mode === 'home' ? cam.alerts.home : false;
  }

  async setMode(mode) {
    if (this.arming && this.arming.mode === mode) return;
    const buttons = document.querySelectorAll('#arming .mode');
    for (const b of buttons) b.disabled = true;
    const { resp, data } = await api('PUT', '/api/arming', { mode })
      .catch(() => ({ resp: { ok: false }, data: null }));
    for (const b of buttons) b.disabled = false;
    this.showError('arming-error', resp, data);
    if (resp.ok) {
      this.arming = data;
      this.render();
      this.changed();
    }
  }

  async addSwitch(ev) {
    ev.preventDefault();
    const days = [...document.querySelectorAll('#schedule-form input[name="day"]:checked')].map((i) => i.value);
    const body = { days, time: $('schedule-time').value, mode: $('schedule-mode').value };
    // Said at once, without asking the relay: a day and a time are needed.
    if (days.length === 0 || !/^\d\d:\d\d$/.test(body.time)) {
      $('schedule-error').textContent = this.text('error.bad_switch');
      $('schedule-error').hidden = false;
      return;
    }
    const { resp, data } = await api('POST', '/api/arming/schedule', body)
      .catch(() => ({ resp: { ok: false }, data: null }));
    this.showError('schedule-error', resp, data);
    if (resp.ok) await this.reload();
  }

  async removeSwitch(id, button) {
    button.disabled = true;
    const { resp, data } = await api('DELETE', `/api/arming/schedule/${id}`)
      .catch(() => ({ resp: { ok: false }, data: null }));
    this.showError('schedule-error', resp, data);
    await this.reload();
  }

  async setCameraAlerts(cam, alerts, input) {
    input.disabled = true;
    const { resp, data } = await api('PATCH', `/api/cameras/${cam.id}`, { alerts })
      .catch(() => ({ resp: { ok: false }, data: null }));
    input.disabled = false;
    this.showError('schedule-error', resp, data);
    if (resp.ok) cam.alerts = data.alerts;
    else input.checked = !input.checked;
    this.render();
    if (resp.ok) this.changed();
  }

  async reload() {
    const { resp, data } = await api('GET', '/api/arming').catch(() => ({ resp: { ok: false } }));
    if (resp.ok) this.arming = data;
    this.render();
    this.changed();
  }

  // A failed answer in words under what was pressed; hidden after a success.
  showError(id, resp, data) {
    const el = $(id);
    el.hidden = resp.ok;
    if (!resp.ok) el.textContent = resp.status ? errorText(this.lang(), resp, data) : this.text('networkError');
  }

  render() {
    const a = this.arming;
    for (const b of document.querySelectorAll('#arming .mode')) {
      b.setAttribute('aria-pressed', String(a !== null && a.mode === b.dataset.mode));
    }
    $('arming').dataset.mode = a ? a.mode : '';
    const status = [];
    if (a) {
      status.push(this.text(`armed.${a.mode}`));
      if (a.since) {
        status.push(this.text(`armedSince.${a.by}`, { time: formatTime(this.lang(), a.since) }));
      }
      if (a.next) {
        status.push(this.text('armedNext', {
          mode: this.text(`mode.${a.next.mode}`), time: formatTime(this.lang(), a.next.at),
        }));
      }
    }
    // Japanese sentences follow one another without a space.
    $('arming-status').textContent = status.join(this.lang() === 'ja' ? '' : ' ');
    this.renderSchedule(a ? a.schedule : []);
    this.renderCameraAlerts();
  }

  renderSchedule(schedule) {
    const key = JSON.stringify([this.lang(), schedule]);
    if (key === this.shown.schedule) return;
    this.shown.schedule = key;
    const list = $('schedule');
    list.replaceChildren();
    $('schedule-empty').hidden = schedule.length > 0;
    for (const s of schedule) {
      const li = document.createElement('li');
      li.dataset.switchId = s.id;
      const what = document.createElement('span');
      what.textContent = this.text('scheduleItem', {
        days: dayNames(this.lang(), s.days), time: s.time, mode: this.text(`mode.${s.mode}`),
      });
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.className = 'secondary';
      remove.textContent = this.text('scheduleRemove');
      remove.setAttribute('aria-label', this.text('scheduleRemoveLabel', { what: what.textContent }));
      remove.addEventListener('click', () => this.removeSwitch(s.id, remove));
      li.append(what, remove);
      list.append(li);
    }
  }

  renderCameraAlerts() {
    const key = JSON.stringify([this.lang(), this.cameras.map((c) => [c.id, c.name, c.alerts])]);
    if (key === this.shown.cameras) return;
    this.shown.cameras = key;
    const body = $('camera-alerts').querySelector('tbody');
    body.replaceChildren();
    for (const cam of this.cameras) {
      const row = document.createElement('tr');
      row.dataset.cameraId = cam.id;
      const name = document.createElement('th');
      name.scope = 'row';
      name.textContent = cam.name;
      row.append(name);
      for (const mode of ['away', 'home']) {
        const cell = document.createElement('td');
        const input = document.createElement('input');
        input.type = 'checkbox';
        input.dataset.mode = mode;
        input.checked = Boolean(cam.alerts && cam.alerts[mode]);
        input.setAttribute('aria-label', this.text(`cameraAlertLabel.${mode}`, { name: cam.name }));
        input.addEventListener('change', () => {
          const alerts = { ...cam.alerts, [mode]: input.checked };
          this.setCameraAlerts(cam, alerts, input);
        });
        cell.append(input);
        row.append(cell);
      }
      body.append(row);
    }
  }
}

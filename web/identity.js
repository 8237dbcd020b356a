// The identity-check password (本人確認用パスワード): the holder's card, where it is set or
// changed behind the login password, and the console's check, where an operator on a call
// types what the caller says and learns match or no match, nothing more. The word is never
// shown back, never kept in the page after it was sent, and never stored by the browser.
import { api, errorText } from './api.js';
import { formatTime, t } from './i18n.js';

const $ = (id) => document.getElementById(id);
// As the relay counts: eyeward::identity::IdentityPassword::MIN_CHARS, after spaces fold.
const MIN_CHARS = 4;

// The holder's card on the cameras page. changed(): the history has a new entry.
export class IdentityCard {
  constructor(lang, changed) {
    this.lang = lang;
    this.changed = changed;
    this.state = null;
    $('identity-form').addEventListener('submit', (e) => this.save(e));
  }

  text(key, vars) {
    return t(this.lang(), key, vars);
  }

  async load() {
    const { resp, data } = await api('GET', '/api/me/identity-password')
      .catch(() => ({ resp: { ok: false } }));
    if (resp.ok) this.state = data;
    this.render();
  }

  render() {
    const s = this.state;
    $('identity-number').textContent = s ? String(s.customer_number) : '—';
    $('identity-state').textContent = !s ? ''
      : s.set ? this.text('identitySetAt', { at: formatTime(this.lang(), Date.parse(s.set_at)) })
        : this.text('identityNone');
    $('identity-save').textContent = this.text(s && s.set ? 'identityChange' : 'identitySave');
  }

  async save(ev) {
    ev.preventDefault();
    const word = $('identity-word');
    const password = $('identity-login-password');
    const error = $('identity-error');
    const status = $('identity-status');
    error.hidden = true;
    status.textContent = '';
    const fail = (message, field) => {
      error.textContent = message;
      error.hidden = false;
      if (field) field.focus();
    };
    if (word.value.trim().replace(/\s+/g, ' ').length < MIN_CHARS) {
      return fail(this.text('identityTooShort', { n: MIN_CHARS }), word);
    }
    if (!password.value) return fail(this.text('identityNeedsPassword'), password);
    const button = $('identity-save');
    button.disabled = true;
    try {
      const { resp, data } = await api('PUT', '/api/me/identity-password', {
        password: password.value, identity_password: word.value,
      });
      password.value = '';
      if (!resp.ok) {
        return fail(errorText(this.lang(), resp, data), resp.status === 403 ? password : word);
      }
      word.value = '';
      this.state = data;
      this.render();
      status.textContent = this.text('identitySaved');
      this.changed();
    } catch {
      fail(this.text('networkError'));
    } finally {
      button.disabled = false;
    }
  }
}

// The console's check. root: the #console-view section; lang(): the page's language now.
export class IdentityCheck {
  constructor(root, lang) {
    this.root = root;
    this.lang = lang;
    this.shown = null;   // what the result line says: [key, vars, tone]
    this.$('identity-check-form').addEventListener('submit', (e) => this.check(e));
  }

  $(id) {
    return this.root.querySelector(`#${id}`);
  }

  // The customer of an opened request is the one on the phone: their number is filled in.
  prefill(number) {
    this.$('identity-check-customer').value = String(number);
    this.say(null);
    this.$('identity-check-word').focus();
  }

  say(key, vars = {}, tone = '') {
    this.shown = key ? [key, vars, tone] : null;
    this.render();
  }

  render() {
    const line = this.$('identity-check-result');
    const [key, vars, tone] = this.shown || ['', {}, ''];
    line.textContent = key ? t(this.lang(), key, vars) : '';
    line.dataset.tone = tone;
  }

  clear() {
    this.$('identity-check-customer').value = '';
    this.$('identity-check-word').value = '';
    this.say(null);
  }

  async check(ev) {
    ev.preventDefault();
    const customer = this.$('identity-check-customer');
    const word = this.$('identity-check-word');
    const number = customer.value.trim();
    if (!/^\d+$/.test(number)) {
      customer.focus();
      return this.say('identityCheckNeedsNumber', {}, 'bad');
    }
    if (!word.value.trim()) {
      word.focus();
      return this.say('identityCheckNeedsWord', {}, 'bad');
    }
    const button = this.$('identity-check-submit');
    button.disabled = true;
    this.say('identityChecking');
    try {
      const { resp, data } = await api('POST', `/api/ops/customers/${number}/identity-check`,
        { identity_password: word.value });
      if (resp.ok) {
        const tone = { match: 'ok', no_match: 'bad' }[data.result] || '';
        this.say(`identityResult.${data.result}`, { number }, tone);
      } else if (resp.status === 429 && data && data.code === 'identity_checks_used_up') {
        const wait = Number(resp.headers.get('Retry-After')) || 3600;
        const at = formatTime(this.lang(), Date.now() + wait * 1000, 'time');
        this.say('identityResult.used_up', { at }, 'bad');
      } else if (resp.status === 404) {
        this.say('identityResult.unknown', { number }, 'bad');
      } else {
        this.shown = null;
        this.$('identity-check-result').textContent = errorText(this.lang(), resp, data);
      }
    } catch {
      this.say('networkError', {}, 'bad');
    } finally {
      // What the caller said is not kept on screen once it was checked.
      word.value = '';
      button.disabled = false;
    }
  }
}

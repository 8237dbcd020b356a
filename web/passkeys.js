// Passkeys: the browser's side of the relay's WebAuthn ceremonies (registering one, signing in
// with one, checking this session with one), the card that lists a person's passkeys, and the
// gate an operator passes before the console opens.
// Each ceremony is two calls: `…/options` gives a ceremony token and the options for
// navigator.credentials; the answer goes back with the token. Binary fields travel as
// unpadded base64url, as the relay (webauthn-rs) writes and reads them.
import { api, errorText } from './api.js';
import { formatTime, t } from './i18n.js';

const $ = (id) => document.getElementById(id);

function fromB64url(s) {
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0)).buffer;
}

function toB64url(buf) {
  let bin = '';
  for (const b of new Uint8Array(buf)) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

const withIds = (list) => (list || []).map((c) => ({ ...c, id: fromB64url(c.id) }));

function creationOptions(options) {
  const o = { ...options.publicKey };
  o.challenge = fromB64url(o.challenge);
  o.user = { ...o.user, id: fromB64url(o.user.id) };
  o.excludeCredentials = withIds(o.excludeCredentials);
  return { publicKey: o };
}

function requestOptions(options) {
  const o = { ...options.publicKey };
  o.challenge = fromB64url(o.challenge);
  o.allowCredentials = withIds(o.allowCredentials);
  return { publicKey: o };
}

// What the authenticator made or signed, as the relay reads it; `fields` are the response's
// binary members to send.
function answer(cred, fields) {
  const r = cred.response;
  const response = {};
  for (const f of fields) response[f] = r[f] ? toB64url(r[f]) : null;
  return { id: cred.id, rawId: toB64url(cred.rawId), type: cred.type, response, extensions: cred.getClientExtensionResults() };
}

const registrationAnswer = (cred) => answer(cred, ['attestationObject', 'clientDataJSON']);
const assertionAnswer = (cred) => answer(cred, ['authenticatorData', 'clientDataJSON', 'signature', 'userHandle']);

// Whether this browser can hold passkeys at all.
export const passkeysInBrowser = () => typeof window.PublicKeyCredential === 'function';

// One ceremony: its options from `start`, the authenticator asked with `ask`, the answer sent
// to `finish` (with `extra` fields). Resolves to { resp, data } of the finish, or
// { cancelled: true } when the person closed the browser's prompt.
async function ceremony(start, ask, finish, extra = {}) {
  const started = await api('POST', start);
  if (!started.resp.ok) return started;
  let answer;
  try {
    answer = await ask(started.data.options);
  } catch (e) {
    if (e && (e.name === 'NotAllowedError' || e.name === 'AbortError')) return { cancelled: true };
    throw e;
  }
  return api('POST', finish, { ceremony: started.data.ceremony, credential: answer, ...extra });
}

export function signInWithPasskey() {
  return ceremony('/api/login/passkey/options',
    async (options) => assertionAnswer(await navigator.credentials.get(requestOptions(options))),
    '/api/login/passkey');
}

export function registerPasskey(name) {
  return ceremony('/api/passkeys/options',
    async (options) => registrationAnswer(await navigator.credentials.create(creationOptions(options))),
    '/api/passkeys', { name });
}

export function checkWithPasskey() {
  return ceremony('/api/me/passkey-check/options',
    async (options) => assertionAnswer(await navigator.credentials.get(requestOptions(options))),
    '/api/me/passkey-check');
}

// What a ceremony's failure means, in words.
export function ceremonyError(lang, outcome) {
  if (outcome.cancelled) return t(lang, 'passkeyCancelled');
  return errorText(lang, outcome.resp, outcome.data);
}

// The card listing the signed-in person's passkeys, with Add and Remove. One card, moved into
// the view that shows it (the customer's page or the operator's console).
export class PasskeyPanel {
  constructor(lang) {
    this.lang = lang;
    this.card = $('passkeys');
    // Its place on the customer's page, to come back to from the console.
    this.home = { parent: this.card.parentElement, next: this.card.nextElementSibling };
    $('passkey-form').addEventListener('submit', (e) => { e.preventDefault(); this.add(); });
  }

  async load(into) {
    if (into.contains(this.home.parent)) this.home.parent.insertBefore(this.card, this.home.next);
    else into.append(this.card);
    const { resp, data } = await api('GET', '/api/passkeys').catch(() => ({ resp: { ok: false } }));
    this.card.hidden = !resp.ok || !data.offered || !passkeysInBrowser();
    if (this.card.hidden) return;
    this.render(data.passkeys);
  }

  render(passkeys) {
    const lang = this.lang();
    const list = $('passkeys-list');
    list.replaceChildren();
    $('passkeys-empty').hidden = passkeys.length > 0;
    for (const p of passkeys) {
      const li = document.createElement('li');
      li.dataset.passkeyId = p.id;
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = p.name;
      const when = document.createElement('span');
      when.className = 'muted small';
      when.textContent = p.last_used_at
        ? t(lang, 'passkeyUsed', { at: formatTime(lang, p.last_used_at) })
        : t(lang, 'passkeyAdded', { at: formatTime(lang, p.created_at) });
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.className = 'secondary';
      remove.textContent = t(lang, 'passkeyRemove');
      remove.setAttribute('aria-label', t(lang, 'passkeyRemoveLabel', { name: p.name }));
      remove.addEventListener('click', () => this.remove(p, remove));
      li.append(name, when, remove);
      list.append(li);
    }
  }

  say(status, error) {
    $('passkeys-status').textContent = status || '';
    $('passkeys-error').textContent = error || '';
    $('passkeys-error').hidden = !error;
  }

  async add() {
    const lang = this.lang();
    const input = $('passkey-name');
    const name = input.value.trim();
    if (!name) {
      this.say('', t(lang, 'passkeyNameMissing'));
      input.focus();
      return;
    }
    const button = $('passkey-add');
    button.disabled = true;
    this.say(t(lang, 'passkeyFollowBrowser'), '');
    try {
      const outcome = await registerPasskey(name);
      if (outcome.resp && outcome.resp.ok) {
        input.value = '';
        this.say(t(lang, 'passkeyRegistered', { name }), '');
        await this.reload();
      } else {
        this.say('', ceremonyError(lang, outcome));
      }
    } catch {
      this.say('', t(lang, 'passkeyUnsupported'));
    } finally {
      button.disabled = false;
    }
  }

  async remove(passkey, button) {
    const lang = this.lang();
    if (!window.confirm(t(lang, 'passkeyRemoveConfirm', { name: passkey.name }))) return;
    button.disabled = true;
    const { resp, data } = await api('DELETE', `/api/passkeys/${passkey.id}`)
      .catch(() => ({ resp: { ok: false } }));
    if (resp.ok) this.say(t(lang, 'passkeyRemoved', { name: passkey.name }), '');
    else this.say('', resp.status ? errorText(lang, resp, data) : t(lang, 'networkError'));
    await this.reload();
  }

  // The list again, where the card is.
  reload() {
    return this.load(this.card.closest('#cameras-view, #console-view'));
  }
}

// The operator's gate: resolves once this session is checked with a passkey (registering the
// first one if they have none). `passkeys` is GET /api/passkeys's answer.
export function passkeyGate(lang, passkeys) {
  const first = passkeys.passkeys.length === 0;
  $('passkey-gate-lead').textContent = t(lang(), first ? 'passkeyGateFirst' : 'passkeyGateCheck');
  $('passkey-gate-new').hidden = !first;
  $('passkey-gate-submit').textContent = t(lang(), first ? 'passkeyGateRegister' : 'passkeyGateUse');
  const err = $('passkey-gate-error');
  err.hidden = true;
  return new Promise((resolve) => {
    const form = $('passkey-gate-form');
    form.onsubmit = async (e) => {
      e.preventDefault();
      err.hidden = true;
      const name = $('passkey-gate-name').value.trim();
      if (first && !name) {
        err.textContent = t(lang(), 'passkeyNameMissing');
        err.hidden = false;
        return;
      }
      const submit = $('passkey-gate-submit');
      submit.disabled = true;
      try {
        const outcome = first ? await registerPasskey(name) : await checkWithPasskey();
        if (outcome.resp && outcome.resp.ok) {
          form.onsubmit = null;
          $('passkey-gate-name').value = '';
          resolve();
          return;
        }
        err.textContent = ceremonyError(lang(), outcome);
      } catch {
        err.textContent = t(lang(), 'passkeyUnsupported');
      } finally {
        submit.disabled = false;
      }
      err.hidden = false;
    };
  });
}

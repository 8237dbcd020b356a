// The household: the holder's list of the people they let in (each camera's rights, a guest's
// end), the invitation form, and the page an invited person reaches from the mailed link
// (#invite/TOKEN) to choose their password. User text only ever goes to textContent.
import { api, errorText } from './api.js';
import { formatTime, t } from './i18n.js';

const $ = (id) => document.getElementById(id);

// The rights, in the relay's order. Moving, speaking and requesting a guard are done from the
// live view: they come with watching.
export const RIGHTS = ['watch', 'events', 'move', 'speak', 'dispatch', 'alerts'];
const NEED_WATCH = ['move', 'speak', 'dispatch'];

// Whether the person may use `right` on `camera` (the holder's cameras carry no rights: all).
export function may(camera, right) {
  return !camera.rights || camera.rights.includes(right);
}

export class HouseholdPanel {
  constructor(lang) {
    this.lang = lang;
    this.cameras = [];
    this.household = { members: [], invitations: [] };
    // The member whose rights the form changes; null: the form invites.
    this.editing = null;
    $('household-form').addEventListener('submit', (e) => this.submit(e));
    $('household-cancel').addEventListener('click', () => this.edit(null));
    $('household-guest').addEventListener('change', () => this.renderForm());
  }

  text(key, vars) {
    return t(this.lang(), key, vars);
  }

  async load(cameras) {
    this.cameras = cameras;
    const { resp, data } = await api('GET', '/api/household').catch(() => ({ resp: { ok: false } }));
    if (resp.ok) this.household = data;
    this.render();
  }

  stop() {
    this.cameras = [];
    this.household = { members: [], invitations: [] };
    this.editing = null;
    $('household-members').replaceChildren();
    $('household-invitations').replaceChildren();
    $('household-rights').replaceChildren();
    $('household-form').reset();
  }

  // The rights of `cameras` (`{"<id>": [...]}`) in words, one camera after another.
  describe(cameras) {
    const parts = Object.entries(cameras || {}).map(([id, rights]) => {
      const cam = this.cameras.find((c) => String(c.id) === id);
      const words = rights.map((r) => this.text(`right.${r}`)).join(', ');
      return `${cam ? cam.name : id}: ${words || this.text('right.none')}`;
    });
    return parts.length ? parts.join(' · ') : this.text('right.noCameras');
  }

  render() {
    const when = (at) => formatTime(this.lang(), at, 'datetime');
    const members = $('household-members');
    members.replaceChildren();
    $('household-empty').hidden = this.household.members.length > 0;
    for (const m of this.household.members) {
      const li = document.createElement('li');
      li.dataset.memberId = m.id;
      const name = document.createElement('strong');
      name.textContent = m.name;
      const email = document.createElement('span');
      email.className = 'muted';
      email.textContent = m.email;
      const rights = document.createElement('span');
      rights.className = 'rights';
      rights.textContent = this.describe(m.cameras);
      li.append(name, email, rights);
      if (m.until) {
        const until = document.createElement('span');
        until.className = m.ended ? 'badge pending' : 'badge';
        until.textContent = this.text(m.ended ? 'guestEnded' : 'guestUntil', { t: when(m.until) });
        li.append(until);
      }
      const change = document.createElement('button');
      change.type = 'button';
      change.className = 'secondary';
      change.textContent = this.text('memberChange');
      change.setAttribute('aria-label', this.text('memberChangeLabel', { name: m.name }));
      change.addEventListener('click', () => this.edit(m));
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.className = 'secondary danger';
      remove.textContent = this.text('memberRemove');
      remove.setAttribute('aria-label', this.text('memberRemoveLabel', { name: m.name }));
      remove.addEventListener('click', async () => {
        if (!window.confirm(this.text('memberRemoveConfirm', { name: m.name }))) return;
        remove.disabled = true;
        await api('DELETE', `/api/household/members/${m.id}`).catch(() => {});
        if (this.editing && this.editing.id === m.id) this.edit(null);
        await this.load(this.cameras);
      });
      li.append(change, remove);
      members.append(li);
    }
    const invitations = $('household-invitations');
    invitations.replaceChildren();
    const pending = this.household.invitations.filter((i) => i.state === 'pending');
    for (const i of pending) {
      const li = document.createElement('li');
      li.dataset.invitationId = i.id;
      const who = document.createElement('span');
      who.textContent = `${i.name} <${i.email}>`;
      const state = document.createElement('span');
      state.className = 'badge pending';
      state.textContent = this.text('invitationPending', { t: when(i.expires_at) });
      const withdraw = document.createElement('button');
      withdraw.type = 'button';
      withdraw.className = 'secondary';
      withdraw.textContent = this.text('invitationWithdraw');
      withdraw.setAttribute('aria-label', this.text('invitationWithdrawLabel', { name: i.name }));
      withdraw.addEventListener('click', async () => {
        withdraw.disabled = true;
        await api('DELETE', `/api/household/invitations/${i.id}`).catch(() => {});
        await this.load(this.cameras);
      });
      li.append(who, state, withdraw);
      invitations.append(li);
    }
    this.renderForm();
  }

  // Changes `member`'s rights in the form (null: back to inviting someone).
  edit(member) {
    this.editing = member;
    $('household-error').hidden = true;
    $('household-form').reset();
    if (member) {
      $('household-guest').checked = !!member.until;
      if (member.until) $('household-until').value = localInput(member.until);
    }
    this.renderForm();
    if (member) $('household-form-title').focus();
  }

  // The form: who (when inviting), each camera's rights as a row of checkboxes, a guest's end.
  renderForm() {
    const editing = this.editing;
    $('household-form-title').textContent = editing
      ? this.text('memberChangeTitle', { name: editing.name })
      : this.text('inviteTitle');
    $('household-who').hidden = !!editing;
    $('household-cancel').hidden = !editing;
    $('household-submit').textContent = this.text(editing ? 'memberSave' : 'inviteSend');
    $('household-until-row').hidden = !$('household-guest').checked;
    const body = $('household-rights');
    const kept = new Map([...body.querySelectorAll('input')].map((i) => [i.name, i.checked]));
    body.replaceChildren();
    for (const cam of this.cameras) {
      const tr = document.createElement('tr');
      const th = document.createElement('th');
      th.scope = 'row';
      th.textContent = cam.name;
      tr.append(th);
      const given = editing ? (editing.cameras[String(cam.id)] || []) : null;
      for (const right of RIGHTS) {
        const td = document.createElement('td');
        const box = document.createElement('input');
        box.type = 'checkbox';
        box.name = `${cam.id}:${right}`;
        box.setAttribute('aria-label', this.text('rightFor', { right: this.text(`right.${right}`), camera: cam.name }));
        box.disabled = right === 'dispatch' && cam.plan !== 'dispatch';
        box.checked = !box.disabled && (given ? given.includes(right) : !!kept.get(box.name));
        // Rights used from the live view bring watching along; no watching, none of them.
        box.addEventListener('change', () => {
          const row = (r) => tr.querySelector(`input[name="${cam.id}:${r}"]`);
          if (box.checked && NEED_WATCH.includes(right)) row('watch').checked = true;
          if (!box.checked && right === 'watch') for (const r of NEED_WATCH) row(r).checked = false;
        });
        td.append(box);
        tr.append(td);
      }
      body.append(tr);
    }
  }

  // The form's grant: `{"cameras": {...}, "until"?}`.
  grant() {
    const cameras = {};
    for (const cam of this.cameras) {
      const rights = RIGHTS.filter((r) => $('household-rights').querySelector(`input[name="${cam.id}:${r}"]`)?.checked);
      if (rights.length) cameras[String(cam.id)] = rights;
    }
    const grant = { cameras };
    if ($('household-guest').checked) {
      const until = $('household-until').value;
      grant.until = until ? new Date(until).toISOString() : '';
    }
    return grant;
  }

  async submit(ev) {
    ev.preventDefault();
    const err = $('household-error');
    err.hidden = true;
    const grant = this.grant();
    if (grant.until === '') {
      err.textContent = this.text('guestNeedsEnd');
      err.hidden = false;
      return;
    }
    const editing = this.editing;
    const call = editing
      ? api('PUT', `/api/household/members/${editing.id}`, grant)
      : api('POST', '/api/household/invitations', {
        ...grant,
        name: $('household-name').value.trim(),
        email: $('household-email').value.trim(),
        lang: $('household-lang').value,
      });
    const { resp, data } = await call.catch(() => ({ resp: { ok: false }, data: null }));
    if (!resp.ok) {
      err.textContent = resp.status ? errorText(this.lang(), resp, data) : this.text('networkError');
      err.hidden = false;
      return;
    }
    $('household-status').textContent = editing
      ? this.text('memberSaved', { name: editing.name })
      : this.text('inviteSent', { email: data.email });
    this.edit(null);
    await this.load(this.cameras);
  }
}

// A time as a datetime-local input takes it, in this browser's zone.
function localInput(iso) {
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// The page of a mailed invitation: who invites, to which cameras, and the password to choose.
// `joined(account)` is called once the person is in.
export async function showInvitation(token, lang, joined) {
  const view = $('invite-view');
  $('invite-error').hidden = true;
  const { resp, data } = await api('POST', '/api/invitation', { token }).catch(() => ({ resp: { ok: false } }));
  $('invite-body').hidden = !resp.ok;
  $('invite-missing').hidden = resp.ok;
  if (resp.ok) {
    $('invite-lead').textContent = t(lang(), 'inviteLead', { household: data.household, name: data.name });
    $('invite-email').textContent = data.email;
    const list = $('invite-cameras');
    list.replaceChildren();
    for (const cam of data.cameras) {
      const li = document.createElement('li');
      const name = document.createElement('strong');
      name.textContent = cam.name;
      const rights = document.createElement('span');
      rights.textContent = ` ${cam.rights.map((r) => t(lang(), `right.${r}`)).join(', ')}`;
      li.append(name, rights);
      list.append(li);
    }
    $('invite-until').hidden = !data.until;
    if (data.until) $('invite-until').textContent = t(lang(), 'inviteGuest', { t: formatTime(lang(), data.until, 'datetime') });
  }
  const form = $('invite-form');
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const err = $('invite-error');
    err.hidden = true;
    const password = $('invite-password').value;
    if (password !== $('invite-password-again').value) {
      err.textContent = t(lang(), 'passwordsDiffer');
      err.hidden = false;
      return;
    }
    const answer = await api('POST', '/api/invitation/accept', { token, password })
      .catch(() => ({ resp: { ok: false }, data: null }));
    if (!answer.resp.ok) {
      err.textContent = answer.resp.status ? errorText(lang(), answer.resp, answer.data) : t(lang(), 'networkError');
      err.hidden = false;
      return;
    }
    form.reset();
    // The token leaves the address bar (and the browser's history of this tab).
    history.replaceState(null, '', location.pathname);
    await joined(answer.data);
  };
  return view;
}

// Events as evidence. `eventItem` is one event as every list shows it (the picture and the
// time in the home's zone, a link to the full-size viewer, its clip played in place; a gap
// says what was lost); the
// `EventFeed` is every camera's events in one list, newest first, with a camera filter and
// "Show older" paging back through everything kept. User text is only ever set as text.
import { api, errorText } from './api.js';
import { clipPlayer } from './clip.js';
import { formatTime, t } from './i18n.js';

const $ = (id) => document.getElementById(id);
const PAGE = 50;

// One event as a list item; `withCamera` names its camera too (the all-cameras feed).
export function eventItem(lang, e, withCamera = false) {
  const li = document.createElement('li');
  li.dataset.eventId = e.id;
  const when = (at) => formatTime(lang, at, 'full');
  const label = when(e.at);
  const time = document.createElement('time');
  time.dateTime = e.at;
  time.textContent = label;
  const camera = document.createElement('span');
  camera.className = 'event-camera';
  camera.textContent = withCamera ? e.camera_name : '';
  if (!e.snapshot_url) {
    // A gap in what the camera could keep, or an event whose picture it had to drop.
    li.className = 'no-snapshot';
    const what = document.createElement('span');
    what.textContent = e.kind === 'gap' ? gapText(lang, e, when(e.until)) : t(lang, 'eventNoSnapshot');
    li.append(time, ...(withCamera ? [camera] : []), what);
    return li;
  }
  const link = document.createElement('a');
  link.href = `#event/${e.id}`;
  const img = document.createElement('img');
  img.className = 'thumb';
  img.loading = 'lazy';
  img.src = e.snapshot_url;
  img.alt = t(lang, 'eventAlt', { t: label });
  link.append(img, time);
  if (withCamera) link.append(camera);
  if (e.delayed) {
    const late = document.createElement('span');
    late.className = 'badge';
    late.textContent = t(lang, 'eventDelayed');
    link.append(late);
  }
  if (e.armed === false) {
    const quiet = document.createElement('span');
    quiet.className = 'badge quiet-badge';
    quiet.textContent = t(lang, 'eventNotArmed');
    link.append(quiet);
  }
  li.append(link);
  if (e.clip) {
    // The clip plays where the picture was, the snapshot as its first picture.
    const play = document.createElement('button');
    play.type = 'button';
    play.className = 'secondary clip-play';
    play.textContent = t(lang, 'clipPlay');
    play.setAttribute('aria-label', t(lang, 'clipPlayLabel', { t: label }));
    play.addEventListener('click', () => {
      const player = clipPlayer(lang, e, label, true);
      img.hidden = true;
      play.hidden = true;
      li.classList.add('playing');
      li.insertBefore(player, link);
      player.querySelector('video').focus();
    });
    li.append(play);
  }
  for (const m of (e.mail || []).filter((d) => d.state === 'failed')) {
    const failed = document.createElement('span');
    failed.className = 'mail-failed';
    failed.textContent = t(lang, 'eventMailFailed', { to: m.to });
    li.append(failed);
  }
  return li;
}

// What a gap lost: snapshots and events, clips, or both.
function gapText(lang, e, until) {
  const n = (e.lost_snapshots || 0) + (e.lost_events || 0);
  const clips = e.lost_clips || 0;
  if (clips === 0) return t(lang, 'eventGap', { n, until });
  if (n === 0) return t(lang, 'eventGapClips', { c: clips, until });
  return t(lang, 'eventGapBoth', { n, c: clips, until });
}

// The query that continues a list after its last event (capture time, then id).
export function olderThan(last) {
  return last ? `&before=${Date.parse(last.at)}&before_id=${last.id}` : '';
}

export class EventFeed {
  // lang(): the page's language now.
  constructor(lang) {
    this.lang = lang;
    this.events = [];
    this.full = false;   // the last page was full: there may be older ones
    $('feed-camera').addEventListener('change', () => this.load());
    $('feed-older').addEventListener('click', () => this.more());
  }

  // The camera filter's choices: all cameras, then each.
  setCameras(cameras) {
    const select = $('feed-camera');
    const chosen = select.value;
    const all = document.createElement('option');
    all.value = '';
    all.textContent = t(this.lang(), 'feedAllCameras');
    select.replaceChildren(all, ...cameras.map((c) => {
      const o = document.createElement('option');
      o.value = String(c.id);
      o.textContent = c.name;
      return o;
    }));
    if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
  }

  async page(after) {
    const camera = $('feed-camera').value;
    const url = `/api/events?limit=${PAGE}${camera ? `&camera=${camera}` : ''}${olderThan(after)}`;
    const { resp, data } = await api('GET', url).catch(() => ({ resp: { ok: false }, data: null }));
    const error = $('feed-error');
    error.hidden = resp.ok;
    if (!resp.ok) {
      error.textContent = resp.status ? errorText(this.lang(), resp, data) : t(this.lang(), 'networkError');
      return null;
    }
    this.full = data.length === PAGE;
    return data;
  }

  async load() {
    const first = await this.page(null);
    if (!first) return;
    this.events = first;
    this.render();
  }

  async more() {
    const button = $('feed-older');
    button.disabled = true;
    const next = await this.page(this.events[this.events.length - 1]);
    button.disabled = false;
    if (!next) return;
    this.events = [...this.events, ...next];
    this.render();
  }

  render() {
    $('feed-list').replaceChildren(...this.events.map((e) => eventItem(this.lang(), e, true)));
    $('feed-empty').hidden = this.events.length > 0;
    $('feed-older').hidden = !this.full;
    $('feed-count').textContent = t(this.lang(), 'feedCount', { n: this.events.length });
  }

  stop() {
    this.events = [];
    this.full = false;
    $('feed-list').replaceChildren();
    $('feed-count').textContent = '';
  }
}

// Every camera live at once: a tile per camera, each its own WHEP session of the camera's
// stream, scaled to the tile (the relay pulls one stream per camera, so a tile costs the
// relay no transcoding). A click enlarges the camera (its live view). At most MAX_PLAYING
// tiles play at once (a customer's live sessions are bounded by the relay); the others show
// their latest picture, saying when it was taken. An offline camera's tile looks offline.
import { api } from './api.js';
import { formatTime, t } from './i18n.js';
import { LivePlayer } from './live.js';

const $ = (id) => document.getElementById(id);
export const MAX_PLAYING = 9;

// The camera's latest picture that was kept: `{ url, at }`, or null.
export async function latestPicture(cameraId) {
  const { resp, data } = await api('GET', `/api/cameras/${cameraId}/events?limit=10`)
    .catch(() => ({ resp: { ok: false } }));
  if (!resp.ok) return null;
  const e = data.find((ev) => ev.snapshot_url);
  return e ? { url: e.snapshot_url, at: e.at } : null;
}

// Puts a picture in `poster` with a caption that says when it was taken.
export function showPicture(poster, lang, picture) {
  const img = document.createElement('img');
  img.className = 'still';
  img.alt = '';
  img.src = picture.url;
  poster.replaceChildren(img);
  if (picture.at) {
    const when = document.createElement('span');
    when.className = 'taken';
    when.textContent = t(lang, 'pictureTaken', { t: formatTime(lang, picture.at) });
    poster.append(when);
  }
}

export class LiveGrid {
  // lang(): the page's language now.
  constructor(lang) {
    this.lang = lang;
    this.players = [];
  }

  async start(cameras) {
    await this.stop();
    const list = $('grid-tiles');
    const lang = this.lang();
    list.replaceChildren(...cameras.map((cam, i) => {
      const li = document.createElement('li');
      li.className = 'grid-tile';
      li.dataset.cameraId = cam.id;
      const link = document.createElement('a');
      link.href = `#camera/${cam.id}`;
      const stage = document.createElement('div');
      stage.className = 'poster';
      const video = document.createElement('video');
      video.muted = true;
      video.autoplay = true;
      video.playsInline = true;
      const badge = document.createElement('span');
      badge.className = 'badge grid-badge';
      const name = document.createElement('span');
      name.className = 'grid-name';
      name.textContent = cam.name;
      stage.append(video);
      link.append(stage, name, badge);
      li.append(link);
      const setStatus = (s) => {
        li.dataset.status = s || '';
        badge.dataset.status = s || '';
        badge.textContent = s ? t(this.lang(), `live.${s}`) : '';
        // An offline camera shows its latest picture, not a black square.
        video.hidden = s === 'offline';
      };
      if (i < MAX_PLAYING && cam.online) {
        const player = new LivePlayer(video, setStatus);
        this.players.push(player);
        player.play(`/api/cameras/${cam.id}/whep`).catch(() => setStatus('offline'));
      } else {
        video.hidden = true;
        li.dataset.status = cam.online ? 'idle' : 'offline';
        badge.dataset.status = cam.online ? '' : 'offline';
        badge.textContent = t(lang, cam.online ? 'gridOpenToWatch' : 'offline');
      }
      latestPicture(cam.id).then((p) => {
        if (p && (video.hidden || li.dataset.status !== 'live')) {
          const still = document.createElement('div');
          still.className = 'grid-still';
          showPicture(still, this.lang(), p);
          stage.append(still);
        }
      });
      return li;
    }));
    $('grid-empty').hidden = cameras.length > 0;
  }

  // Leaving the grid ends every session on the relay at once.
  async stop() {
    const players = this.players;
    this.players = [];
    await Promise.all(players.map((p) => p.stop()));
    $('grid-tiles').replaceChildren();
  }
}

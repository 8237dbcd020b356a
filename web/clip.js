// An event's clip (issue 24): the video with its snapshot as the poster, a bar under it that
// marks the moment motion was detected (a click there, or the button, goes to it), and the
// file to download. The relay serves clips with range requests, so the player seeks without
// fetching the whole file first.
import { t } from './i18n.js';

// "0:05" for 5 000 ms.
function clock(ms) {
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

// A figure that plays `e`'s clip; `autoplay` starts it at once (muted: clips have no
// sound, and browsers start only silent videos on their own).
export function clipPlayer(lang, e, label, autoplay = false) {
  const { clip } = e;
  const figure = document.createElement('figure');
  figure.className = 'clip';
  const video = document.createElement('video');
  video.className = 'clip-video';
  video.controls = true;
  video.playsInline = true;
  video.muted = true;
  video.preload = 'metadata';
  if (e.snapshot_url) video.poster = e.snapshot_url;
  video.src = clip.url;
  video.setAttribute('aria-label', t(lang, 'clipLabel', { t: label }));
  video.width = clip.width;
  video.height = clip.height;
  if (autoplay) video.autoplay = true;

  // The clip's length as a bar: where it plays, and the moment of detection.
  const bar = document.createElement('div');
  bar.className = 'clip-bar';
  bar.setAttribute('aria-hidden', 'true');
  const played = document.createElement('span');
  played.className = 'clip-played';
  const mark = document.createElement('span');
  mark.className = 'clip-mark';
  const at = clip.length_ms > 0 ? Math.min(1, clip.event_at_ms / clip.length_ms) : 0;
  mark.style.left = `${at * 100}%`;
  bar.append(played, mark);
  video.addEventListener('timeupdate', () => {
    const share = clip.length_ms > 0 ? Math.min(1, (video.currentTime * 1000) / clip.length_ms) : 0;
    played.style.width = `${share * 100}%`;
  });
  bar.addEventListener('click', (ev) => {
    const box = bar.getBoundingClientRect();
    video.currentTime = (((ev.clientX - box.left) / box.width) * clip.length_ms) / 1000;
  });

  const actions = document.createElement('figcaption');
  actions.className = 'clip-actions';
  const moment = document.createElement('button');
  moment.type = 'button';
  moment.className = 'secondary clip-moment';
  moment.textContent = t(lang, 'clipMoment', { at: clock(clip.event_at_ms) });
  moment.addEventListener('click', () => {
    video.currentTime = clip.event_at_ms / 1000;
    video.play().catch(() => {});
  });
  const download = document.createElement('a');
  download.className = 'button-link secondary clip-download';
  download.href = `${clip.url}?download=1`;
  download.textContent = t(lang, 'clipDownload');
  actions.append(moment, download);
  figure.append(video, bar, actions);
  return figure;
}

// An event's clip, as a customer plays it (issue 24). The alert mail's "Watch the video clip",
// opened before the clip has come: after logging in, the page says it is on its way and plays
// it once it arrives. In the history of every camera ("All events"), a gap says how many clips
// the camera had to drop, and the event's "Play clip" plays it where the picture was: it
// advances, at the camera's 1280 pixels, and "Go to the moment of detection" goes there. The
// event's own page shows the clip with the snapshot as its poster; "Download the clip" saves
// an MP4 named after the camera. Run by tests/browser_clips.rs.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkA11y, collectProblems, env, launch } from './common.mjs';

const OUT = env('OUT_DIR');
mkdirSync(OUT, { recursive: true });
const CLIP_URL = env('CLIP_URL');
const EVENT = CLIP_URL.match(/#event\/(\d+)\/clip$/)[1];

const browser = await launch({ viewport: { width: 1366, height: 900 }, acceptDownloads: true });
const problems = [];
try {
  const page = browser.ctx.pages()[0] ?? await browser.ctx.newPage();
  collectProblems(page, problems, 'customer');
  const playing = (sel, past) => page.waitForFunction(({ sel, past }) => {
    const v = document.querySelector(sel);
    return v && v.currentTime > past && v.videoWidth === 1280 && v.videoHeight === 720;
  }, { sel, past }, { timeout: 20_000 });

  // The mail's link, before the clip has come: log in, and the page waits for it.
  await page.goto(CLIP_URL);
  await page.waitForSelector('#login-view:not([hidden])');
  await page.click('[data-lang="en"]');
  await page.fill('#email', env('EMAIL'));
  await page.fill('#password', env('PASSWORD'));
  await page.click('#login-submit');
  await page.waitForSelector('#event-view:not([hidden])');
  await page.waitForSelector('#event-clip-coming:not([hidden])');
  assert.match(await page.textContent('#event-clip-coming'), /on its way/);
  await page.screenshot({ path: join(OUT, 'coming.png') });
  // It comes, and plays by itself.
  const own = '#event-clip video.clip-video';
  await page.waitForSelector(own, { timeout: 30_000 });
  assert.ok(await page.isHidden('#event-clip-coming'));
  await playing(own, 1);
  const { clip } = await page.evaluate(async (id) => (await fetch(`/api/events/${id}`)).json(), EVENT);
  const EVENT_AT = clip.event_at_ms / 1000;

  // The history: the event with its clip, played in place.
  await page.click('#event-view .back');
  await page.waitForSelector('#cameras-view:not([hidden])');
  await page.click('#all-events');
  // The clips the camera's queue had to drop are told, with the snapshots and events.
  await page.waitForSelector('#feed-list li.no-snapshot');
  assert.match(await page.textContent('#feed-list li.no-snapshot'), /^.*3 video clips lost on the camera until/);
  const item = `#feed-list li[data-event-id="${EVENT}"]`;
  await page.waitForSelector(`${item} .clip-play`);
  assert.equal(await page.getAttribute(`${item} .clip-play`, 'aria-label'), `Play the video clip of ${await page.textContent(`${item} time`)}`);
  await page.click(`${item} .clip-play`);
  const video = `${item} video.clip-video`;
  await page.waitForSelector(video);
  assert.equal(await page.getAttribute(video, 'poster'), `/api/events/${EVENT}/snapshot`);
  await playing(video, 1);
  // The moment of detection: marked on the bar, a button away.
  const mark = await page.$eval(`${item} .clip-mark`, (m) => parseFloat(m.style.left));
  assert.ok(mark > 0 && mark < 100, `the mark at ${mark}%`);
  // Pressed and read in one turn of the page: the list may be drawn again at any moment (the
  // simulated scene keeps making events), and a read after that would be another video's.
  const at = await page.$eval(item, (el) => {
    el.querySelector('.clip-moment').click();
    return el.querySelector('video.clip-video').currentTime;
  });
  assert.ok(Math.abs(at - EVENT_AT) < 0.5, `at ${at} s, detection at ${EVENT_AT} s`);
  await playing(video, EVENT_AT + 0.5);
  await checkA11y(page, 'the history with a clip playing');
  await page.screenshot({ path: join(OUT, 'history.png') });

  // The event's page: the clip, its poster the snapshot, and the file to save.
  await page.click(`${item} > a`);
  await page.waitForSelector('#event-view:not([hidden])');
  await page.waitForSelector(own);
  assert.ok(await page.isHidden('#event-picture'), 'the clip takes the picture\'s place');
  await page.click('#event-clip .clip-moment');
  await playing(own, EVENT_AT + 0.5);
  await checkA11y(page, 'the event with its clip');
  await page.screenshot({ path: join(OUT, 'event.png') });
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#event-clip .clip-download')]);
  assert.match(download.suggestedFilename(), /^front-door-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ\.mp4$/);
  const saved = join(OUT, 'saved.mp4');
  await download.saveAs(saved);
  console.log(JSON.stringify({ ok: true, saved, event: Number(EVENT), suggested: download.suggestedFilename() }));
  assert.deepEqual(problems, []);
} finally {
  await browser.close();
}

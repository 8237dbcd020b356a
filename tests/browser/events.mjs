// Events as evidence, as a customer goes through them. The feed of every camera (from the
// cameras page's "All events"): newest first with each camera named, "Show older" until all
// 133 are there and no more is offered, the camera filter. The viewer: earlier and later by
// button and by ← →, the picture's download. A camera's day on its live view: yesterday's 130
// events, past the first 100, and its bar with hour marks that opens the event nearest a click. Then the feed in Japanese on a phone. Run by
// tests/browser_events.rs.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkA11y, collectProblems, env, launch, logIn } from './common.mjs';

const OUT = env('OUT_DIR');
mkdirSync(OUT, { recursive: true });

const browser = await launch({ viewport: { width: 1366, height: 800 } });
const problems = [];
try {
  const page = browser.ctx.pages()[0] ?? await browser.ctx.newPage();
  // 409: these cameras have no agent, so no video.
  collectProblems(page, problems, 'customer', /status of (401|409)/);
  await logIn(page);
  await page.click('[data-lang="en"]');

  // The feed: 50 at a time, newest first, each camera named.
  await page.click('#all-events');
  await page.waitForSelector('#feed-view:not([hidden])');
  const items = () => page.$$eval('#feed-list li', (els) => els.map((li) => li.dataset.eventId));
  await page.waitForFunction(() => document.querySelectorAll('#feed-list li').length === 50);
  assert.equal(await page.textContent('#feed-list li:first-child .event-camera'), 'Garden');
  assert.equal(await page.textContent('#feed-count'), '50 shown');
  for (const n of [100, 133]) {
    await page.click('#feed-older');
    await page.waitForFunction((n) => document.querySelectorAll('#feed-list li').length === n, n);
  }
  await page.waitForSelector('#feed-older', { state: 'hidden' });
  const all = await items();
  assert.equal(new Set(all).size, 133, 'each event once');
  const times = await page.$$eval('#feed-list time', (els) => els.map((e) => Date.parse(e.dateTime)));
  assert.ok(times.every((t, i) => i === 0 || times[i - 1] >= t), 'newest first');
  await checkA11y(page, 'the feed of every camera');
  await page.screenshot({ path: join(OUT, 'feed.png') });

  // One camera.
  await page.selectOption('#feed-camera', { label: 'Garden' });
  await page.waitForFunction(() => document.querySelectorAll('#feed-list li').length === 3);
  assert.ok(await page.isHidden('#feed-older'));
  await page.selectOption('#feed-camera', { label: 'Porch' });
  await page.waitForFunction(() => document.querySelectorAll('#feed-list li').length === 50
    && [...document.querySelectorAll('#feed-list .event-camera')].every((c) => c.textContent === 'Porch'));

  // The viewer: the newest Porch event has no later one; ← goes a minute back.
  const newest = (await items())[0];
  await page.click(`#feed-list li[data-event-id="${newest}"] a`);
  await page.waitForSelector('#event-view:not([hidden])');
  await page.waitForSelector('#event-older:not([hidden])');
  assert.ok(await page.isHidden('#event-newer'));
  const at = async () => Date.parse(await page.getAttribute('#event-at', 'datetime'));
  const first = await at();
  assert.match(await page.getAttribute('#event-download', 'href'), new RegExp(`^/api/events/${newest}/snapshot$`));
  assert.match(await page.getAttribute('#event-download', 'download'), /^Porch-.+\.jpg$/);
  await page.keyboard.press('ArrowLeft');
  await page.waitForFunction((before) => Date.parse(document.getElementById('event-at').dateTime) < before, first);
  assert.equal(first - await at(), 60_000);
  await page.waitForSelector('#event-newer:not([hidden])');
  await checkA11y(page, 'the event viewer');
  await page.screenshot({ path: join(OUT, 'viewer.png') });
  await page.click('#event-newer');
  await page.waitForFunction((want) => Date.parse(document.getElementById('event-at').dateTime) === want, first);
  assert.equal(await page.evaluate(() => location.hash), `#event/${newest}`);

  // The camera's day, past the first 100.
  await page.click('#event-live');
  await page.waitForSelector('#live-view:not([hidden])');
  await page.fill('#events-day', env('YESTERDAY'));
  await page.dispatchEvent('#events-day', 'change');
  await page.waitForFunction(() => document.querySelectorAll('#event-list li').length === 100);
  await page.waitForSelector('#events-older:not([hidden])');
  await page.click('#events-older');
  await page.waitForFunction(() => document.querySelectorAll('#event-list li').length === 130);
  await page.waitForSelector('#events-older', { state: 'hidden' });
  assert.equal(await page.$$eval('#timeline li', (els) => els.length), 130);
  // The bar has hour marks, and a click on it opens the event nearest that time: 10:30.
  assert.deepEqual(await page.$$eval('#timeline-hours span', (els) => els.map((e) => e.textContent)),
    ['0', '3', '6', '9', '12', '15', '18', '21']);
  await page.locator('#timeline').scrollIntoViewIfNeeded();
  const bar = await page.locator('#timeline').boundingBox();
  await page.mouse.click(bar.x + bar.width * (10.5 / 24) + 2, bar.y + bar.height - 1);
  await page.waitForSelector('#event-view:not([hidden])');
  // Marks a minute apart lie under the pointer together: one of them, within minutes.
  const halfPastTen = Date.parse(`${env('YESTERDAY')}T10:30:00+09:00`);
  await page.waitForFunction(() => document.getElementById('event-at').dateTime !== '');
  const opened = Date.parse(await page.getAttribute('#event-at', 'datetime'));
  assert.ok(Math.abs(opened - halfPastTen) <= 5 * 60_000, `opened ${new Date(opened).toISOString()}`);
  await page.goBack();
  await page.waitForSelector('#live-view:not([hidden])');

  // The feed on a phone, in Japanese.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click('[data-lang="ja"]');
  await page.goto(`${env('BASE_URL')}/#events`);
  await page.waitForSelector('#feed-view:not([hidden])');
  await page.waitForFunction(() => document.querySelectorAll('#feed-list li').length === 50);
  assert.equal(await page.textContent('#feed-title'), 'すべてのイベント');
  assert.equal(await page.textContent('#feed-older'), 'さらに前のイベントを表示');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the feed is ${overflow}px wider than the phone`);
  await checkA11y(page, 'the feed in Japanese on a phone');
  await page.screenshot({ path: join(OUT, 'feed-phone-ja.png') });
  assert.deepEqual(problems, []);
  console.log(JSON.stringify({ ok: true, events: all.length }));
} finally {
  await browser.close();
}

// Pan-tilt in Chromium, on a pan-tilt camera's live view: holding "right" turns the camera
// (the picture slides left by as much as the reported position says) and letting go stops
// it; the arrow keys, click-to-centre, presets and home; a tab closed mid-move, or one whose
// commands stop arriving, leaves the camera still within the dead-man timeout; a fixed camera
// shows no controls. Run by tests/browser_ptz.rs inside a loopback-only network namespace.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkA11y, env, liveBrowser, openCamera, waitPlaying } from './common.mjs';

const OUT = env('OUT_DIR');
const CAMERA = env('CAMERA_ID');
const FIXED = env('FIXED_CAMERA_ID');
mkdirSync(OUT, { recursive: true });
const browsers = [];

// The camera's state as the relay knows it (from the agent's reading of the camera).
function cameraState(page) {
  return page.evaluate(async (id) => (await (await fetch(`/api/cameras/${id}/ptz`)).json()).state, CAMERA);
}

// The position the page shows.
async function shown(page) {
  return page.evaluate(() => {
    const d = document.getElementById('ptz-position').dataset;
    return d.pan === undefined ? null : { pan: Number(d.pan), tilt: Number(d.tilt), moving: d.moving === 'true' };
  });
}

async function waitStill(page, timeout = 5000) {
  const start = Date.now();
  for (;;) {
    const s = await cameraState(page);
    if (s && !s.moving) return Date.now() - start;
    if (Date.now() - start > timeout) throw new Error(`still moving after ${timeout} ms: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// Waits until the relay says the camera turns (a held press turns after HOLD_AFTER_MS).
async function waitMoving(page, timeout = 3000) {
  const start = Date.now();
  while (!(await cameraState(page))?.moving) {
    if (Date.now() - start > timeout) throw new Error(`not moving after ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// Waits until the page shows a still camera with pan and tilt in the given [low, high]
// ranges.
async function waitShown(page, { pan = [-1, 1], tilt = [-1, 1] }, what) {
  await page.waitForFunction(([pan, tilt]) => {
    const d = document.getElementById('ptz-position').dataset;
    if (d.pan === undefined || d.moving === 'true') return false;
    const p = Number(d.pan);
    const t = Number(d.tilt);
    return p >= pan[0] && p <= pan[1] && t >= tilt[0] && t <= tilt[1];
  }, [pan, tilt], { timeout: 8000 }).catch((e) => { throw new Error(`${what}: ${e.message}`); });
  return shown(page);
}

const near = (v, d = 0.02) => [v - d, v + d];

// The picture's column brightness profile, 320 wide.
function profile(page) {
  return page.evaluate(() => {
    const v = document.getElementById('video');
    const c = document.createElement('canvas');
    c.width = 320;
    c.height = 180;
    const g = c.getContext('2d');
    g.drawImage(v, 0, 0, 320, 180);
    const px = g.getImageData(0, 0, 320, 180).data;
    const cols = new Array(320).fill(0);
    for (let y = 0; y < 180; y++) {
      for (let x = 0; x < 320; x++) {
        const i = (y * 320 + x) * 4;
        cols[x] += 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2];
      }
    }
    return cols;
  });
}

// The shift s (in 320-wide pixels) for which after[x] best matches before[x + s]: positive
// when the scene slid left, as it does when the camera turns right.
function slide(before, after) {
  let best = { s: 0, err: Infinity };
  for (let s = -120; s <= 120; s++) {
    let sum = 0;
    let n = 0;
    for (let x = 0; x < 320; x++) {
      const y = x + s;
      if (y < 0 || y >= 320) continue;
      sum += Math.abs(after[x] - before[y]);
      n += 1;
    }
    if (sum / n < best.err) best = { s, err: sum / n };
  }
  return best.s;
}

try {
  const ctx = await liveBrowser(browsers);
  const { page } = await openCamera(ctx, CAMERA);
  await waitPlaying(page, 20_000);
  await page.waitForSelector('#ptz:not([hidden])');
  const start = await waitShown(page, {}, 'the position is shown');
  assert.ok(Math.abs(start.pan) < 0.01, JSON.stringify(start));

  // Hold "right": the camera turns; let go: it stops.
  const before = await profile(page);
  const right = await page.$('[data-dir="right"]');
  const box = await right.boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.waitForFunction(() => document.getElementById('ptz-position').dataset.moving === 'true', null, { timeout: 3000 });
  await new Promise((r) => setTimeout(r, 600));
  assert.equal((await cameraState(page)).moving, true, 'turning while held');
  await page.mouse.up();
  const stoppedIn = await waitStill(page);
  const turned = await waitShown(page, { pan: [0.05, 1] }, 'the position moved right');
  assert.ok(Math.abs(turned.tilt) < 0.01, JSON.stringify(turned));
  // The picture follows (give the video a moment to show the last frames).
  await new Promise((r) => setTimeout(r, 1500));
  const after = await profile(page);
  const slid = slide(before, after);
  // One picture width is 1 in the generic pan space on the simulator: 320 px here.
  const expected = turned.pan * 320;
  assert.ok(slid > 0 && Math.abs(slid - expected) <= Math.max(8, expected * 0.3),
    `the picture slid ${slid} px; the position says ${expected.toFixed(1)} px`);
  await checkA11y(page, 'the live view of a pan-tilt camera');
  await page.screenshot({ path: join(OUT, 'turned-right.png') });

  // The arrow keys do nothing while the page, not the picture, has the focus: they scroll.
  await page.locator('body').focus();
  await page.keyboard.down('ArrowLeft');
  await new Promise((r) => setTimeout(r, 500));
  await page.keyboard.up('ArrowLeft');
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(await shown(page), turned, 'an arrow key outside the picture moved the camera');
  // With the picture focused (as a click or Tab gives it), holding ArrowLeft turns left.
  await page.focus('#player');
  await page.keyboard.down('ArrowLeft');
  await new Promise((r) => setTimeout(r, 900));
  await page.keyboard.up('ArrowLeft');
  await waitStill(page);
  const left = await waitShown(page, { pan: [-1, turned.pan - 0.03] }, 'ArrowLeft turned left');
  // A short press is one visible step: a tenth of the range.
  await page.keyboard.press('ArrowUp');
  const stepped = await waitShown(page, { tilt: near(left.tilt + 0.1) }, 'ArrowUp stepped up');
  await page.click('[data-dir="down"]');
  await waitShown(page, { tilt: near(stepped.tilt - 0.1) }, 'a click on the down arrow stepped down');

  // Click-to-centre: a click three quarters across the picture turns a quarter picture right.
  const v = await (await page.$('#video')).boundingBox();
  await page.mouse.click(v.x + v.width * 0.75, v.y + v.height * 0.5);
  const centred = await waitShown(page, { pan: near(left.pan + 0.25, 0.03) }, 'click-to-centre');

  // Presets: save this view, go home, come back.
  await page.fill('#preset-name', 'Gate');
  await page.click('#preset-form button[type="submit"]');
  await page.waitForSelector('#ptz-presets button.preset:text("Gate")');
  await page.click('#ptz-home');
  await waitShown(page, { pan: near(0), tilt: near(0) }, 'home');
  await page.click('#ptz-presets button.preset:text("Gate")');
  await waitShown(page, { pan: near(centred.pan) }, 'back at the preset');

  // The pad sits beside the picture on a desktop screen, within the first screenful.
  const inside = (a, b) => a.x >= b.x - 1 && a.y >= b.y - 1 && a.x + a.width <= b.x + b.width + 1 && a.y + a.height <= b.y + b.height + 1;
  const boxOf = async (sel) => (await page.$(sel)).boundingBox();
  let pad = await boxOf('.pad');
  let player = await boxOf('#player');
  assert.ok(pad.x >= player.x + player.width && pad.y < player.y + player.height, `pad ${JSON.stringify(pad)} not beside ${JSON.stringify(player)}`);
  assert.ok(pad.y + pad.height <= page.viewportSize().height, 'pad below the fold');

  // Full screen keeps the status badge, the pad and an exit; a click on the picture there
  // does not re-aim the camera.
  await page.click('#fullscreen');
  await page.waitForFunction(() => document.fullscreenElement?.id === 'stage');
  for (const sel of ['#live-status', '.pad', '#fullscreen-exit']) assert.ok(await page.isVisible(sel), `${sel} hidden in full screen`);
  player = await boxOf('#player');
  assert.ok(inside(await boxOf('.pad'), player), 'the pad is over the picture in full screen');
  const aimed = await shown(page);
  await page.mouse.click(player.x + player.width * 0.2, player.y + player.height * 0.3);
  await new Promise((r) => setTimeout(r, 800));
  assert.deepEqual(await shown(page), aimed, 'a click in full screen re-aimed the camera');
  await page.screenshot({ path: join(OUT, 'fullscreen.png') });
  await page.click('#fullscreen-exit');
  await page.waitForFunction(() => !document.fullscreenElement);

  // On a phone the pad lies over the picture, not below the fold.
  await page.setViewportSize({ width: 390, height: 844 });
  pad = await boxOf('.pad');
  player = await boxOf('#player');
  assert.ok(inside(pad, player), `pad ${JSON.stringify(pad)} not over ${JSON.stringify(player)}`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the live view is ${overflow}px wider than a phone`);
  await checkA11y(page, 'the live view on a phone');
  await page.screenshot({ path: join(OUT, 'phone.png') });
  await page.setViewportSize({ width: 1280, height: 900 });

  // The tab is closed mid-move: the camera stops.
  const watcher = await ctx.newPage();
  await watcher.goto(env('BASE_URL'));
  await page.hover('[data-dir="up"]');
  await page.mouse.down();
  await waitMoving(watcher);
  await page.close();
  const closedStop = await waitStill(watcher, 3000);
  assert.ok(closedStop <= 1500, `stopped ${closedStop} ms after the tab closed`);

  // A tab whose commands stop arriving (its network gone, the laptop asleep) sends no stop:
  // the dead-man timeout stops the camera.
  const again = await ctx.newPage();
  await again.goto(`${env('BASE_URL')}/#camera/${CAMERA}`);
  await again.waitForSelector('#ptz:not([hidden])');
  await again.hover('[data-dir="down"]');
  await again.mouse.down();
  await waitMoving(watcher);
  await again.route('**/ptz', (route) => route.abort());
  const deadmanStop = await waitStill(watcher, 4000);
  assert.ok(deadmanStop <= 1500, `stopped ${deadmanStop} ms after the commands stopped (dead-man 1000 ms)`);
  await again.mouse.up();
  await again.unroute('**/ptz');

  // A fixed camera's live view has no pan-tilt controls.
  await again.evaluate((id) => { location.hash = `#camera/${id}`; }, FIXED);
  await again.waitForFunction((id) => document.getElementById('live-name').textContent !== '' && location.hash === `#camera/${id}`, FIXED);
  await again.waitForSelector('#ptz', { state: 'hidden' });
  await again.screenshot({ path: join(OUT, 'fixed-no-controls.png') });

  console.log(JSON.stringify({ ok: true, stoppedIn, slid, expected, closedStop, deadmanStop }));
} finally {
  for (const b of browsers) await b.close();
}

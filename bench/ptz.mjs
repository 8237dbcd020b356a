// Pan-tilt command latency, the browser's side: presses of the live view's arrow buttons in
// Chromium (each press's time is its pointerdown event's), and, as the floor, ContinuousMove
// sent straight to the camera's ONVIF service from here. Prints {"presses": [epoch ms...],
// "direct": [epoch ms...]}; bench/src/ptz_latency.rs matches them with the simulator's log.
// Runs inside a loopback-only network namespace.
import { env, liveBrowser, openCamera } from '../tests/browser/common.mjs';

const PRESSES = Number(env('PRESSES'));
const PTZ_URL = env('PTZ_URL');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const browsers = [];
try {
  const ctx = await liveBrowser(browsers);
  const { page } = await openCamera(ctx, env('CAMERA_ID'));
  await page.waitForSelector('#ptz:not([hidden])');
  await page.waitForFunction(() => document.getElementById('ptz-position').dataset.pan !== undefined);
  await page.evaluate(() => {
    window.presses = [];
    document.addEventListener('pointerdown', (e) => window.presses.push(performance.timeOrigin + e.timeStamp), true);
  });
  for (let i = 0; i < PRESSES; i++) {
    // Right and left in turn, so the camera stays within its range.
    const box = await (await page.$(`[data-dir="${i % 2 ? 'left' : 'right'}"]`)).boundingBox();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    await sleep(300);
    await page.mouse.up();
    await page.waitForFunction(() => document.getElementById('ptz-position').dataset.moving === 'false');
    await sleep(200 + Math.random() * 300);
  }
  const presses = await page.evaluate(() => window.presses);

  const direct = [];
  for (let i = 0; i < PRESSES; i++) {
    const x = i % 2 ? -0.5 : 0.5;
    const body = '<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
      + '<ContinuousMove xmlns="http://www.onvif.org/ver20/ptz/wsdl"><ProfileToken>profile_1</ProfileToken>'
      + `<Velocity><PanTilt xmlns="http://www.onvif.org/ver10/schema" x="${x}" y="0"/></Velocity><Timeout>PT0.3S</Timeout>`
      + '</ContinuousMove></s:Body></s:Envelope>';
    direct.push(performance.timeOrigin + performance.now());
    const resp = await fetch(PTZ_URL, { method: 'POST', headers: { 'Content-Type': 'application/soap+xml' }, body });
    if (!resp.ok) throw new Error(`direct ContinuousMove: ${resp.status} ${await resp.text()}`);
    await sleep(600 + Math.random() * 300);
  }
  console.log(JSON.stringify({ presses, direct }));
} finally {
  for (const b of browsers) await b.close();
}

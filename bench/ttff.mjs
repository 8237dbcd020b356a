// Time to first frame in Chromium, eyeward (WHEP) and Janus (streaming plugin, HTTP API)
// interleaved, each join at a random moment of the camera's 4 s keyframe interval. Prints
// {"eyeward": [ms...], "janus": [ms...]} on stdout; or, with COLD_CAMERAS, eyeward's cold
// starts only (below). Run by bench/src/live_video.rs inside a
// loopback-only network namespace.
//
// eyeward: from creating the offer to the first decoded frame (requestVideoFrameCallback).
// Janus: from attaching the plugin handle (Janus makes the offer) to the first decoded frame.
// Both clients wait for ICE candidates as the viewer page does (web/live.js `gathered`).
import { env, launch } from '../tests/browser/common.mjs';

const BASE = env('BASE_URL');
const JOINS = Number(env('JOINS'));
const KEYFRAME_MS = 4000;

const browser = await launch({
  permissions: ['camera', 'microphone'],
  // The measurement runs in the relay's page; Janus is another origin, which the relay's
  // Content-Security-Policy would rightly refuse.
  bypassCSP: true,
  args: ['--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required'],
});
const page = browser.ctx.pages()[0] ?? await browser.ctx.newPage();
page.on('pageerror', (e) => console.error('page error:', e.message));
page.on('crash', () => console.error('page crashed'));
await page.goto(BASE);

// Helpers installed in the page once: a video element that resolves on its first frame, and
// the viewer page's own wait for ICE candidates (web/live.js), used by both clients.
await page.evaluate(async () => {
  window.gathered = (await import('/live.js')).gathered;
  window.firstFrame = (pc) => {
    const v = document.createElement('video');
    v.muted = true;
    v.autoplay = true;
    v.playsInline = true;
    document.body.append(v);
    pc.ontrack = (e) => { v.srcObject = e.streams[0] || new MediaStream([e.track]); };
    const shown = new Promise((resolve, reject) => {
      v.requestVideoFrameCallback(() => resolve(performance.now()));
      setTimeout(() => reject(new Error('no frame within 15 s')), 15000);
    });
    return { shown, done: () => v.remove() };
  };
});

const login = await page.evaluate(async ([email, password]) => {
  const r = await fetch('/api/login', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  return r.status;
}, [env('EMAIL'), env('PASSWORD')]);
if (login !== 200) throw new Error(`login answered ${login}`);
console.error('ttff: logged in');

function joinEyeward(camera) {
  return page.evaluate(async (camera) => {
    const pc = new RTCPeerConnection();
    pc.addTransceiver('video', { direction: 'recvonly' });
    const video = window.firstFrame(pc);
    const t0 = performance.now();
    await pc.setLocalDescription(await pc.createOffer());
    await window.gathered(pc);
    const r = await fetch(`/api/cameras/${camera}/whep`, {
      method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp,
    });
    if (r.status !== 201) throw new Error(`WHEP answered ${r.status}`);
    const location = r.headers.get('Location');
    await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
    const shown = await video.shown;
    pc.close();
    video.done();
    await fetch(location, { method: 'DELETE' });
    return shown - t0;
  }, camera);
}

function joinJanus(janus, session, mountpoint) {
  return page.evaluate(async ([janus, session, mountpoint]) => {
    const post = async (path, body) => {
      const r = await fetch(`${janus}${path}`, {
        method: 'POST',
        body: JSON.stringify({ ...body, transaction: Math.random().toString(36).slice(2) }),
      });
      const reply = await r.json();
      if (reply.janus !== 'success' && reply.janus !== 'ack') throw new Error(JSON.stringify(reply));
      return reply;
    };
    const pc = new RTCPeerConnection();
    const video = window.firstFrame(pc);
    const t0 = performance.now();
    const handle = (await post(`/${session}`, { janus: 'attach', plugin: 'janus.plugin.streaming' })).data.id;
    await post(`/${session}/${handle}`, { janus: 'message', body: { request: 'watch', id: mountpoint } });
    let offer = null;
    while (!offer) {
      const events = await (await fetch(`${janus}/${session}?maxev=10&_=${Date.now()}`)).json();
      for (const e of [].concat(events)) if (e.sender === handle && e.jsep) offer = e.jsep;
    }
    await pc.setRemoteDescription(offer);
    await pc.setLocalDescription(await pc.createAnswer());
    await window.gathered(pc);
    await post(`/${session}/${handle}`, {
      janus: 'message', body: { request: 'start' }, jsep: { type: 'answer', sdp: pc.localDescription.sdp },
    });
    const shown = await video.shown;
    pc.close();
    video.done();
    await post(`/${session}/${handle}`, { janus: 'detach' });
    return shown - t0;
  }, [janus, session, mountpoint]);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Cold starts (COLD_CAMERAS set): every join starts the relay's pull of a camera nobody
// watches (the relay lingers LINGER_MS after a view), at a random moment of the camera's
// keyframe interval. Prints {"cold": {"<camera id>": [ms...]}}.
if (process.env.COLD_CAMERAS) {
  const cameras = process.env.COLD_CAMERAS.split(',');
  const linger = Number(env('LINGER_MS'));
  const cold = Object.fromEntries(cameras.map((c) => [c, []]));
  for (let i = 0; i < JOINS; i++) {
    for (const camera of cameras) {
      // The pull stops within a second of the linger's end; then any moment of the interval.
      await sleep(linger + 2000 + Math.random() * KEYFRAME_MS);
      cold[camera].push(await joinEyeward(camera));
    }
    console.error(`cold join ${i + 1}/${JOINS}: ${cameras.map((c) => `camera ${c} ${cold[c][i].toFixed(0)} ms`).join(', ')}`);
  }
  await browser.close();
  console.log(JSON.stringify({ cold }));
  process.exit(0);
}

const janus = env('JANUS_URL');
const session = await page.evaluate(async (janus) => {
  const r = await fetch(janus, { method: 'POST', body: JSON.stringify({ janus: 'create', transaction: 'bench' }) });
  return (await r.json()).data.id;
}, janus);
// Janus ends a session after 60 s without a request.
const keepalive = setInterval(() => page.evaluate(([janus, session]) => fetch(`${janus}/${session}`, {
  method: 'POST', body: JSON.stringify({ janus: 'keepalive', transaction: 'keepalive' }),
}), [janus, session]).catch(() => {}), 20000);

const camera = env('CAMERA_ID');
const mountpoint = Number(env('JANUS_MOUNTPOINT'));
// The first join is reported apart: eyeward pulls a camera only while someone watches, so its
// first viewer waits for the RTSP set-up and the camera's next keyframe; Janus pulls always.
const eyewardFirst = await joinEyeward(camera);
console.error(`ttff: eyeward's first join ${eyewardFirst.toFixed(0)} ms`);
const janusFirst = await joinJanus(janus, session, mountpoint);
console.error(`ttff: Janus's first join ${janusFirst.toFixed(0)} ms`);
const results = {
  eyeward_first: eyewardFirst,
  janus_first: janusFirst,
  eyeward: [],
  janus: [],
};
for (let i = 0; i < JOINS; i++) {
  await sleep(Math.random() * KEYFRAME_MS);
  results.eyeward.push(await joinEyeward(camera));
  await sleep(Math.random() * KEYFRAME_MS);
  results.janus.push(await joinJanus(janus, session, mountpoint));
  console.error(`join ${i + 1}/${JOINS}: eyeward ${results.eyeward[i].toFixed(0)} ms, janus ${results.janus[i].toFixed(0)} ms`);
}
clearInterval(keepalive);
await browser.close();
console.log(JSON.stringify(results));

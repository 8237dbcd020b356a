// Live video: a WHEP client (RFC 9725) on a standard RTCPeerConnection, with the status a
// person needs (connecting, live, reconnecting, camera offline) and optional stats. Every view
// starts silent; listen(true) asks the relay for the camera's sound and unmutes.

const STALL_MS = 2500;      // no new frame for this long: the picture is stuck
const RETRY_MS = 2000;      // wait before setting up a failed session again
const OFFLINE_RETRY_MS = 5000; // wait before asking again for a camera that is offline
// The longest wait for ICE candidates before offering. The offer goes as soon as the first
// candidate is known: the relay learns the browser's other addresses from its connectivity
// checks (peer-reflexive candidates), and waiting for all of them (STUN can take seconds)
// would only delay the picture.
const GATHER_MS = 150;
// How long the direct path (UDP, or TCP where UDP is blocked) may take to connect before the
// player falls back to the TURN servers the relay handed out with the last answer.
const DIRECT_MS = 3000;

// Once a network needed TURN, this page uses it from the start of every view, with the
// servers (and this viewer's credentials) of the latest answer: they are valid for as long
// as a live view may last, and refreshed by every answer.
let turnNeeded = false;
let iceServers = [];

// The STUN/TURN servers of a WHEP answer's Link headers (RFC 9725, section 4.4), as
// RTCPeerConnection's iceServers.
export function iceServersFrom(linkHeader) {
  if (!linkHeader) return [];
  const servers = [];
  for (const link of linkHeader.split(/,\s*(?=<)/)) {
    const url = /^<([^>]+)>/.exec(link.trim());
    if (!url || !/;\s*rel="?ice-server"?/.test(link)) continue;
    const param = (name) => {
      const m = new RegExp(`;\\s*${name}="([^"]*)"`).exec(link);
      return m ? m[1] : undefined;
    };
    const server = { urls: url[1] };
    if (param('username') !== undefined) {
      server.username = param('username');
      server.credential = param('credential');
    }
    servers.push(server);
  }
  return servers;
}

export class LivePlayer {
  // video: the <video> element; onStatus(status) with status one of
  // 'connecting' | 'live' | 'reconnecting' | 'offline'; onSound({ listening, codec, error })
  // when the sound starts, stops or cannot be had.
  constructor(video, onStatus, onSound = () => {}) {
    this.video = video;
    this.onStatus = onStatus;
    this.onSound = onSound;
    this.wantSound = false;
    this.pc = null;
    this.location = null;
    this.url = null;
    this.lastFrameAt = 0;
    this.frames = 0;
    this.status = null;
    this.timer = null;
    this.connectStarted = 0;
    this.watchFrames();
  }

  setStatus(s) {
    if (s !== this.status) {
      this.status = s;
      this.onStatus(s);
    }
  }

  // Counts decoded frames, so "live" means pictures, not just a connection.
  watchFrames() {
    const v = this.video;
    const tick = () => {
      this.frames += 1;
      this.lastFrameAt = performance.now();
      if (this.pc) this.setStatus('live');
      v.requestVideoFrameCallback(tick);
    };
    if ('requestVideoFrameCallback' in HTMLVideoElement.prototype) {
      v.requestVideoFrameCallback(tick);
    } else {
      v.addEventListener('timeupdate', () => { this.lastFrameAt = performance.now(); if (this.pc) this.setStatus('live'); });
    }
  }

  // Plays the WHEP endpoint `url` (a camera's, or a dispatch request's shared view).
  async play(url) {
    await this.stop();
    this.url = url;
    this.lastFrameAt = performance.now();
    this.setStatus('connecting');
    // A stuck picture or a dropped connection: say so, and set the session up again.
    this.timer = setInterval(() => this.checkHealth(), 500);
    await this.connect();
  }

  checkHealth() {
    // Offline: the player asks again now and then, and says nothing new until the camera
    // is back.
    if (!this.url || !this.pc && (this.status === 'connecting' || this.status === 'offline')) return;
    const stuck = performance.now() - this.lastFrameAt > STALL_MS;
    const state = this.pc ? this.pc.connectionState : 'closed';
    // The direct path does not connect (the network blocks the relay's ports): try again
    // through TURN, without the person doing anything.
    const slow = state !== 'connected' && performance.now() - this.connectStarted > DIRECT_MS;
    if (this.pc && !turnNeeded && iceServers.some((s) => /^turns?:/.test(s.urls)) && (slow || state === 'failed')) {
      turnNeeded = true;
      this.setStatus('reconnecting');
      this.retry(0);
      return;
    }
    // Disconnected with a stuck picture: the relay node went away (it stopped, or died);
    // another one answers the next offer.
    if (state === 'failed' || state === 'closed' || (state === 'disconnected' && stuck)) {
      this.setStatus('reconnecting');
      this.retry();
    } else if (stuck && this.status === 'live') {
      this.setStatus('reconnecting');
    }
  }

  // The relay said it is stopping: set the session up again (on another node).
  reconnect() {
    if (!this.url) return;
    this.setStatus('reconnecting');
    this.retry();
  }

  // Sets the session up again after `delay` ms (by default a moment, longer for a camera
  // that is offline).
  retry(delay = this.status === 'offline' ? OFFLINE_RETRY_MS : RETRY_MS) {
    if (this.retrying) return;
    this.retrying = true;
    setTimeout(async () => {
      this.retrying = false;
      if (this.url) await this.connect().catch(() => this.setStatus('offline'));
    }, delay);
  }

  async connect() {
    await this.closeSession();
    const url = this.url;
    const pc = new RTCPeerConnection(turnNeeded ? { iceServers } : {});
    this.pc = pc;
    this.connectStarted = performance.now();
    pc.addTransceiver('video', { direction: 'recvonly' });
    // Sends too: what the owner says through the camera goes here while they hold "speak"
    // (the microphone is asked for only then; until then the sender has no track).
    this.audio = pc.addTransceiver('audio', { direction: 'sendrecv' });
    // Both tracks come in the relay's one stream, which keeps sound and pictures in step.
    pc.ontrack = (e) => {
      const stream = e.streams[0] || new MediaStream([e.track]);
      if (this.video.srcObject !== stream) this.video.srcObject = stream;
    };
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      const resp = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/sdp' },
        body: pc.localDescription.sdp,
        credentials: 'same-origin',
      });
      if (url !== this.url) return pc.close();
      if (resp.status === 201) {
        this.location = resp.headers.get('Location');
        iceServers = iceServersFrom(resp.headers.get('Link'));
        await pc.setRemoteDescription({ type: 'answer', sdp: await resp.text() });
        // A view set up again (after a reconnect) goes on listening if the person was.
        if (this.wantSound) this.listen(true);
        return;
      }
      pc.close();
      this.pc = null;
      const body = await resp.json().catch(() => ({}));
      // 409: the camera cannot send video now (its agent is offline, say).
      if (resp.status === 409) this.setStatus('offline');
      else if (this.status !== 'offline') this.setStatus('reconnecting');
      if (resp.status === 401 || resp.status === 404) throw new Error(body.error || resp.statusText);
      this.retry();
    } catch (e) {
      if (pc.connectionState !== 'closed') pc.close();
      if (this.pc === pc) this.pc = null;
      throw e;
    }
  }

  // Starts (on) or stops hearing the camera in this view: the relay starts the camera's
  // sound for it, and the video element is unmuted (call it from the person's click, which
  // lets the browser play sound). Tells onSound how it went.
  async listen(on) {
    this.wantSound = on;
    this.video.muted = !on;
    const location = this.location;
    if (!location) return;
    const resp = await fetch(`${location}/sound`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ listen: on }),
      credentials: 'same-origin',
    }).catch(() => null);
    if (location !== this.location) return;
    const body = resp ? await resp.json().catch(() => ({})) : {};
    if (resp && resp.ok) {
      this.onSound({ listening: body.listening, codec: body.codec });
      return;
    }
    this.wantSound = false;
    this.video.muted = true;
    this.onSound({ listening: false, error: body.error || (resp ? resp.statusText : 'network error') });
  }

  // Starts (on) or stops speaking through the camera: the microphone goes on the view's own
  // connection and the relay passes it to the camera's speaker. The microphone is let go as
  // soon as the person stops. Returns { talking, codec } or { talking: false, error }.
  async talk(on) {
    const { location, audio } = this;
    if (!on) {
      this.releaseMic();
      if (!location) return { talking: false };
      await this.postTalk(location, false);
      return { talking: false };
    }
    if (!location || !audio) return { talking: false, error: 'the live view is not connected' };
    try {
      this.mic = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (e) {
      return { talking: false, error: e.message || e.name, microphone: true };
    }
    await audio.sender.replaceTrack(this.mic.getAudioTracks()[0]);
    const answer = await this.postTalk(location, true);
    if (!answer.talking) this.releaseMic();
    return answer;
  }

  async postTalk(location, on) {
    const resp = await fetch(`${location}/talk`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ talk: on }),
      credentials: 'same-origin',
    }).catch(() => null);
    const body = resp ? await resp.json().catch(() => ({})) : {};
    if (resp && resp.ok) return { talking: body.talking, codec: body.codec };
    return { talking: false, error: body.error || (resp ? resp.statusText : 'network error') };
  }

  releaseMic() {
    if (this.audio && this.pc) this.audio.sender.replaceTrack(null).catch(() => {});
    if (this.mic) for (const track of this.mic.getTracks()) track.stop();
    this.mic = null;
  }

  // `gone`: the relay ended the session itself (a dispatch request's share closed), so there
  // is nothing to DELETE.
  async closeSession(gone = false) {
    this.releaseMic();
    const { pc, location } = this;
    this.pc = null;
    this.location = null;
    if (location && !gone) {
      // keepalive: the DELETE still goes out when the page is closing.
      await fetch(location, { method: 'DELETE', keepalive: true, credentials: 'same-origin' }).catch(() => {});
    }
    if (pc) pc.close();
  }

  async stop(gone = false) {
    this.url = null;
    // The next view starts silent again.
    this.wantSound = false;
    this.video.muted = true;
    clearInterval(this.timer);
    this.timer = null;
    await this.closeSession(gone);
    this.video.srcObject = null;
    this.status = null;
  }

  // Resolution, frame rate, bitrate and round trip, from the standard stats.
  async stats() {
    if (!this.pc) return null;
    const report = await this.pc.getStats();
    let inbound = null;
    let pair = null;
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') inbound = s;
      if (s.type === 'candidate-pair' && s.state === 'succeeded' && s.nominated) pair = s;
    });
    const now = performance.now();
    const bytes = inbound ? inbound.bytesReceived : 0;
    const kbps = this.prevBytes !== undefined ? ((bytes - this.prevBytes) * 8) / (now - this.prevAt) : 0;
    this.prevBytes = bytes;
    this.prevAt = now;
    return {
      width: this.video.videoWidth,
      height: this.video.videoHeight,
      fps: inbound && inbound.framesPerSecond ? inbound.framesPerSecond : 0,
      kbps: Math.max(0, Math.round(kbps)),
      rttMs: pair && pair.currentRoundTripTime !== undefined ? Math.round(pair.currentRoundTripTime * 1000) : null,
    };
  }
}

// Resolves once the local description holds a candidate, gathering is complete, or
// GATHER_MS have passed. Call it right after setLocalDescription.
export function gathered(pc) {
  const hasCandidate = () => pc.localDescription && pc.localDescription.sdp.includes('a=candidate:');
  if (pc.iceGatheringState === 'complete' || hasCandidate()) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icecandidate', done);
      resolve();
    };
    // Fired for each candidate, and once with none when gathering ends: either will do.
    pc.addEventListener('icecandidate', done);
    const timer = setTimeout(done, GATHER_MS);
  });
}

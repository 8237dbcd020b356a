// Where a guard is, set on a map: the console's dialog for a guard who called in ("I'm at the
// station's east exit"). The operator clicks the place, or moves the map until its cross is
// on it and marks the centre (the way from the keyboard: arrow keys move the map, + and −
// zoom). Known places stand on the map for bearings: the other guards, and the home of the
// request the console has open. The tiles come from the relay's configured tile server
// (`GET /api/ops/map`); Leaflet (web/vendor/leaflet, BSD-2-Clause) draws them, loaded the
// first time the dialog opens.
import { api, errorText } from './api.js';
import { t } from './i18n.js';

// Nothing known: the view of Japan.
const FALLBACK = { lat: 36.2, lon: 138.25, zoom: 5 };
// A street-level view around a known place.
const CLOSE = 16;

let leaflet = null;
// Leaflet's script and style, once per page.
function loadLeaflet() {
  leaflet ??= new Promise((resolve, reject) => {
    const css = document.createElement('link');
    css.rel = 'stylesheet';
    css.href = 'vendor/leaflet/leaflet.css';
    document.head.append(css);
    const script = document.createElement('script');
    script.src = 'vendor/leaflet/leaflet.js';
    script.onload = () => resolve(window.L);
    script.onerror = () => { leaflet = null; reject(new Error('map script')); };
    document.head.append(script);
  });
  return leaflet;
}

let tiles = null;
async function tileSettings() {
  if (tiles) return tiles;
  const { resp, data } = await api('GET', '/api/ops/map');
  if (!resp.ok) throw new Error('map settings');
  tiles = data;
  return tiles;
}

export class GuardMap {
  // dialog: the #guard-map-dialog element; lang(): the page's language now; saved(guard):
  // called with the relay's answer once a position is stored.
  constructor(dialog, lang, saved) {
    this.dialog = dialog;
    this.lang = lang;
    this.saved = saved;
    this.map = null;
    this.chosen = null;     // the marked place, { lat, lon }
    this.marker = null;
    this.known = null;      // the layer of known places
    this.guard = null;
    this.$('guard-map-cancel').addEventListener('click', () => this.dialog.close());
    this.$('guard-map-centre').addEventListener('click', () => {
      const c = this.map.getCenter();
      this.choose({ lat: c.lat, lon: c.lng });
    });
    this.$('guard-map-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.save();
    });
  }

  $(id) {
    return this.dialog.querySelector(`#${id}`);
  }

  text(key, vars) {
    return t(this.lang(), key, vars);
  }

  // Opens the dialog for `guard`; `others` are the center's other guards, `home` the open
  // request's home ({ lat, lon, address }) if any.
  async open(guard, others, home) {
    this.guard = guard;
    this.chosen = null;
    this.$('guard-map-title').textContent = this.text('guardMapTitle', { name: guard.name });
    this.$('guard-map-error').hidden = true;
    this.$('guard-map-save').disabled = true;
    this.showChosen();
    this.dialog.showModal();
    let L;
    try {
      [L] = await Promise.all([loadLeaflet(), tileSettings()]);
    } catch {
      return this.fail(this.text('guardMapUnavailable'));
    }
    if (!this.map) {
      this.map = L.map(this.$('guard-map'), { keyboard: true, zoomControl: true });
      L.tileLayer(tiles.tiles, { attribution: escapeText(tiles.attribution), maxZoom: 19 }).addTo(this.map);
      this.map.on('click', (e) => this.choose({ lat: e.latlng.lat, lon: e.latlng.lng }));
      // A place to act in with arrow keys and clicks, named for what to do there.
      this.map.getContainer().setAttribute('role', 'application');
    }
    this.map.getContainer().setAttribute('aria-label', this.text('guardMapLabel'));
    // The dialog's size is known now that it shows.
    this.map.invalidateSize();
    this.known?.remove();
    this.known = L.layerGroup().addTo(this.map);
    for (const g of others) {
      if (!g.position || g.id === guard.id) continue;
      L.circleMarker([g.position.lat, g.position.lon], { radius: 6, color: '#1f5fbf', weight: 2 })
        .bindTooltip(g.name).addTo(this.known);
    }
    if (home) {
      L.circleMarker([home.lat, home.lon], { radius: 7, color: '#0a7a3d', weight: 3 })
        .bindTooltip(this.text('guardMapHome', { address: home.address || '' })).addTo(this.known);
    }
    this.marker?.remove();
    this.marker = null;
    const at = guard.position ?? home;
    if (at) this.map.setView([at.lat, at.lon], CLOSE);
    else this.map.setView([FALLBACK.lat, FALLBACK.lon], FALLBACK.zoom);
    // Arrow keys move the map at once.
    this.map.getContainer().focus();
  }

  choose(at) {
    const L = window.L;
    this.chosen = { lat: Math.round(at.lat * 1e6) / 1e6, lon: Math.round(wrap(at.lon) * 1e6) / 1e6 };
    this.marker?.remove();
    this.marker = L.circleMarker([this.chosen.lat, this.chosen.lon], {
      radius: 9, color: '#b3261e', weight: 3, fillOpacity: 0.4,
    }).addTo(this.map);
    this.$('guard-map-save').disabled = false;
    this.showChosen();
  }

  showChosen() {
    this.$('guard-map-chosen').textContent = this.chosen
      ? this.text('guardMapChosen', { lat: this.chosen.lat.toFixed(5), lon: this.chosen.lon.toFixed(5) })
      : this.text('guardMapHint');
  }

  async save() {
    if (!this.chosen) return;
    const button = this.$('guard-map-save');
    button.disabled = true;
    const { resp, data } = await api('PUT', `/api/ops/guards/${this.guard.id}/position`, this.chosen)
      .catch(() => ({ resp: null, data: null }));
    button.disabled = false;
    if (resp && resp.ok) {
      this.dialog.close();
      this.saved(data);
      return;
    }
    this.fail(resp ? errorText(this.lang(), resp, data) : this.text('networkError'));
  }

  fail(message) {
    const error = this.$('guard-map-error');
    error.textContent = message;
    error.hidden = false;
  }
}

// A longitude brought back within −180…180 (the map wraps around the world).
function wrap(lon) {
  return ((((lon + 180) % 360) + 360) % 360) - 180;
}

// Leaflet puts the attribution in as HTML: the configured credit is text.
function escapeText(s) {
  const p = document.createElement('p');
  p.textContent = s;
  return p.innerHTML;
}

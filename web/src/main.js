// The common operating picture: one map with own and partner observations, live from this node.
import "maplibre-gl/dist/maplibre-gl.css";
import "./style.css";
import { api } from "./api.js";
import { Palette, FUSED, bounds, endMs, fusedFeatures, observationFeatures, startMs } from "./features.js";
import { FUSED_LAYERS, OBSERVATION_LAYERS, ZONE_LAYERS, createMap, renderedKeys, setVisibility } from "./map.js";
import {
  el,
  eventTitle,
  formatTime,
  renderAudit,
  renderDetail,
  renderEvents,
  renderFusedDetail,
  renderLedger,
  renderSorties,
} from "./panels.js";
import { Symbols, symbolSvg } from "./symbols.js";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const FRESH_MS = 15_000;
const EVENTS_POLL_MS = 5_000;
const FUSED_DEBOUNCE_MS = 5_000;
const FUSE_WITHOUT_ASKING = 2_000;
/** Fusing a larger period is left to the officer's choice: the node works a while on it. */
const $ = (id) => document.getElementById(id);

const state = {
  status: null,
  symbols: null,
  palette: null,
  map: null,
  tz: 0,
  startDay: null,
  endDay: null,
  periodStart: 0,
  periodEnd: 0,
  observations: new Map(),
  fresh: new Map(),
  buffered: null,
  outside: 0,
  fused: null,
  hasFusion: false,
  fusing: null,
  windowHours: 0,
  sliderHours: 0,
  hidden: { origins: new Set(), classes: new Set() },
  kinds: new Set(["air", "sea", "area"]),
  events: new Map(),
  freshEvents: new Set(),
  unseenEvents: 0,
  tab: "detail",
  shown: 0,
};

// --- time -------------------------------------------------------------------------------------

const dayStart = (day, tz) => Date.parse(`${day}T00:00:00Z`) - tz * 60_000;
const dayOf = (ms, tz) => new Date(ms + tz * 60_000).toISOString().slice(0, 10);
const iso = (ms) => new Date(ms).toISOString();

function defaultPeriod(status, tz) {
  const now = Date.now();
  const latest = status.latest ? Date.parse(status.latest) : null;
  const day = latest === null || latest > now - 2 * DAY ? dayOf(now, tz) : dayOf(latest - 1, tz);
  return [day, day];
}

// --- visibility -------------------------------------------------------------------------------

function platformClass(observation) {
  return observation.platform?.platform_class || "unknown";
}

function replayWindow() {
  if (!state.windowHours) return null;
  const end = state.periodStart + state.sliderHours * HOUR;
  return [end - state.windowHours * HOUR, end];
}

function isVisible(observation, window) {
  if (!state.kinds.has(observation.kind)) return false;
  if (state.hidden.origins.has(observation.origin)) return false;
  if (state.hidden.classes.has(platformClass(observation))) return false;
  if (window && !(endMs(observation) >= window[0] && startMs(observation) < window[1])) return false;
  return true;
}

let renderQueued = false;
function render() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    draw();
  });
}

function draw() {
  const window = replayWindow();
  const now = Date.now();
  const features = [];
  let shown = 0;
  for (const observation of state.observations.values()) {
    if (!isVisible(observation, window)) continue;
    shown += 1;
    const fresh = (state.fresh.get(observation.id) || 0) > now;
    features.push(...observationFeatures(observation, state.symbols, state.palette, fresh));
  }
  state.map.getSource("observations").setData({ type: "FeatureCollection", features });
  state.shown = shown;
  const label = $("shown");
  label.textContent = `${shown} of ${state.observations.size} observations shown`;
  label.dataset.count = String(shown);
  label.dataset.loaded = String(state.observations.size);
  const outside = $("outside");
  outside.hidden = state.outside === 0;
  outside.textContent = `${state.outside} new outside the period`;
  $("replay-time").textContent = window
    ? `${formatTime(iso(window[0]), state.tz)} → ${formatTime(iso(window[1]), state.tz)}`
    : "whole period";
  drawFused();
}

function drawFused() {
  const items = state.fused || [];
  const features = state.hidden.origins.has(FUSED)
    ? []
    : items.flatMap((item, index) => fusedFeatures(item, index, state.palette));
  state.map.getSource("fused").setData({ type: "FeatureCollection", features });
}

// --- filters and legend -----------------------------------------------------------------------

function checkbox(value, label, checked, onChange, extra = null) {
  const input = el("input", { type: "checkbox", value, checked });
  input.addEventListener("change", () => onChange(input.checked));
  return el("label", {}, input, extra, ` ${label}`);
}

function refreshFilters() {
  const origins = new Set([state.status.party, ...state.status.partners]);
  for (const observation of state.observations.values()) origins.add(observation.origin);
  if (state.hasFusion) origins.add(FUSED);
  const originBox = $("filter-origin");
  const present = new Set([...originBox.querySelectorAll("input")].map((i) => i.value));
  for (const origin of [...origins].sort()) {
    if (present.has(origin)) continue;
    const role = state.palette.role(origin);
    const swatch = el("span", { class: "swatch", style: `background:${state.palette.colour(origin)}` });
    originBox.append(
      checkbox(origin, origin === FUSED ? "fused (several sources)" : `${origin} (${role})`, !state.hidden.origins.has(origin), (on) => {
        if (on) state.hidden.origins.delete(origin);
        else state.hidden.origins.add(origin);
        render();
      }, swatch),
    );
  }
  const classes = new Set();
  for (const observation of state.observations.values()) classes.add(platformClass(observation));
  const classBox = $("filter-class");
  const known = new Set([...classBox.querySelectorAll("input")].map((i) => i.value));
  for (const name of [...classes].sort()) {
    if (known.has(name)) continue;
    classBox.append(
      checkbox(name, name, !state.hidden.classes.has(name), (on) => {
        if (on) state.hidden.classes.delete(name);
        else state.hidden.classes.add(name);
        render();
      }),
    );
  }
  refreshLegend(origins);
}

function refreshLegend(origins) {
  const items = [...origins].sort().map((origin) =>
    el(
      "li",
      {},
      el("span", { class: "swatch", style: `background:${state.palette.colour(origin)}` }),
      ` ${origin === FUSED ? "fused (several sources)" : `${origin} — ${state.palette.role(origin)}`}`,
    ),
  );
  const examples = [
    ["10060100001101040000", "hostile fighter"],
    ["10063000001202030000", "hostile destroyer"],
    ["10030100001101040000", "friendly fighter"],
  ].map(([sidc, text]) => {
    const holder = el("span", { class: "legend-symbol" });
    const template = document.createElement("template");
    template.innerHTML = symbolSvg(sidc, 18);
    holder.append(template.content.firstElementChild);
    return el("li", {}, holder, ` ${text}`);
  });
  $("legend").replaceChildren(
    ...items,
    el("li", {}, el("span", { class: "legend-line" }), " track (arrows: direction)"),
    ...examples,
  );
}

// --- loading a period -------------------------------------------------------------------------

function readPeriodInputs() {
  state.tz = Number($("period-tz").value);
  state.startDay = $("period-start").value;
  state.endDay = $("period-end").value || state.startDay;
  if (state.endDay < state.startDay) [state.startDay, state.endDay] = [state.endDay, state.startDay];
  state.periodStart = dayStart(state.startDay, state.tz);
  state.periodEnd = dayStart(state.endDay, state.tz) + DAY;
}

function configureSlider() {
  const slider = $("replay-slider");
  const hours = Math.round((state.periodEnd - state.periodStart) / HOUR);
  slider.max = String(hours);
  slider.value = String(hours);
  state.sliderHours = hours;
  const replaying = state.windowHours > 0;
  slider.disabled = !replaying;
  $("replay-play").disabled = !replaying;
}

async function loadPeriod({ fit = true } = {}) {
  readPeriodInputs();
  configureSlider();
  const search = new URLSearchParams({ start: state.startDay, end: state.endDay, tz: String(state.tz) });
  history.replaceState(null, "", `?${search}`);
  $("period-hint").textContent = "loading…";
  state.buffered = state.buffered || [];
  state.outside = 0;
  const items = await api.observations(iso(state.periodStart), iso(state.periodEnd), (n) => {
    $("period-hint").textContent = `loading… ${n}`;
  });
  state.observations = new Map(items.map((o) => [o.id, o]));
  const buffered = state.buffered;
  state.buffered = null;
  for (const observation of buffered) receive(observation);
  $("period-hint").textContent = `${items.length} observations ${state.startDay} – ${state.endDay}`;
  refreshFilters();
  draw();
  if (fit) {
    const box = bounds(state.observations.values());
    if (box) state.map.fitBounds(box, { padding: 60, maxZoom: 7, duration: 0 });
  }
  state.events.clear();
  state.freshEvents.clear();
  const fusedBox = $("layer-fused").querySelector("input");
  if (state.hasFusion && state.observations.size > FUSE_WITHOUT_ASKING && fusedBox.checked) {
    fusedBox.checked = false;
    setVisibility(state.map, FUSED_LAYERS, false);
    toast(`${state.observations.size} observations: switch on "fused" to fuse them`, "info");
  }
  refreshFused();
  await pollEvents(false);
  if (state.tab === "sorties") await showSorties();
}

// --- live -------------------------------------------------------------------------------------

function receive(observation) {
  if (state.buffered) {
    state.buffered.push(observation);
    return;
  }
  const known = state.observations.get(observation.id);
  if (known && known.version > observation.version) return;
  if (observation.retracted) {
    state.observations.delete(observation.id);
    render();
    return;
  }
  if (!(endMs(observation) >= state.periodStart && startMs(observation) < state.periodEnd)) {
    state.outside += 1;
    render();
    return;
  }
  state.observations.set(observation.id, observation);
  state.fresh.set(observation.id, Date.now() + FRESH_MS);
  setTimeout(render, FRESH_MS + 50);
  refreshFilters();
  render();
  scheduleEventPoll();
  scheduleFused();
}

function connectStream(after) {
  const live = $("live");
  const source = new EventSource(`/api/stream?after=${after}`);
  source.addEventListener("open", () => {
    live.className = "live on";
    live.textContent = "● live";
  });
  source.addEventListener("error", () => {
    live.className = "live off";
    live.textContent = "● reconnecting";
  });
  source.addEventListener("observation", (message) => {
    receive(JSON.parse(message.data));
  });
  return source;
}

// --- events feed with alerts ------------------------------------------------------------------

let eventTimer = null;
function scheduleEventPoll() {
  clearTimeout(eventTimer);
  eventTimer = setTimeout(() => pollEvents(true).catch(showError), 500);
}

async function pollEvents(alert) {
  const events = await api.events(iso(state.periodStart), iso(state.periodEnd));
  const fresh = [];
  for (const event of events) {
    if (!state.events.has(event.id)) {
      state.events.set(event.id, event);
      if (alert) fresh.push(event);
    }
  }
  for (const event of fresh) {
    state.freshEvents.add(event.id);
    toast(`New event — ${eventTitle(event)}`, "event");
  }
  if (fresh.length && state.tab !== "events") {
    state.unseenEvents += fresh.length;
    const badge = $("events-badge");
    badge.hidden = false;
    badge.textContent = String(state.unseenEvents);
  }
  renderEvents($("events-list"), $("events-summary"), [...state.events.values()], state.freshEvents, state, pickEvent);
}

function pickEvent(event) {
  if (event.location) state.map.flyTo({ center: event.location.coordinates, zoom: Math.max(state.map.getZoom(), 6) });
  const first = event.observations?.[0];
  if (first) showDetail(first[0], first[1]);
}

// --- fused ------------------------------------------------------------------------------------

function fusedWanted() {
  return state.hasFusion && $("layer-fused").querySelector("input").checked;
}

let fusedTimer = null;
function scheduleFused() {
  clearTimeout(fusedTimer);
  if (fusedWanted()) fusedTimer = setTimeout(refreshFused, FUSED_DEBOUNCE_MS);
}

/** Ask the node to fuse the period, one request at a time (a newer period cancels it). */
async function refreshFused() {
  state.fusing?.abort();
  state.fusing = null;
  const label = $("fused-state");
  if (!fusedWanted()) {
    state.fused = null;
    label.hidden = true;
    drawFused();
    return;
  }
  const fusing = new AbortController();
  state.fusing = fusing;
  label.hidden = false;
  label.textContent = "fusing…";
  try {
    state.fused = await api.fused(iso(state.periodStart), iso(state.periodEnd), fusing.signal);
    label.textContent = `${state.fused.length} seen by several parties`;
  } catch (error) {
    if (fusing.signal.aborted) return;
    state.fused = null;
    label.textContent = `fusion: ${error.message}`;
  } finally {
    if (state.fusing === fusing) state.fusing = null;
  }
  refreshFilters();
  drawFused();
}

// --- panels -----------------------------------------------------------------------------------

function selectTab(name) {
  state.tab = name;
  for (const button of document.querySelectorAll("#tabs button")) {
    button.setAttribute("aria-selected", String(button.dataset.tab === name));
  }
  for (const panel of document.querySelectorAll("#side [role=tabpanel]")) {
    panel.hidden = panel.id !== `tab-${name}`;
  }
  if (name === "events") {
    state.unseenEvents = 0;
    $("events-badge").hidden = true;
  }
  const loaders = { sorties: showSorties, ledger: showLedger, audit: showAudit };
  if (loaders[name]) loaders[name]().catch(showError);
}

async function showDetail(id, version) {
  const panel = $("tab-detail");
  if (state.tab !== "detail") selectTab("detail");
  panel.replaceChildren(el("p", { class: "hint", text: "loading…" }));
  const detail = await api.detail(id, version);
  renderDetail(panel, detail, state);
}

async function showSorties() {
  const panel = $("tab-sorties");
  const chart = await api.sorties(state.startDay, state.endDay, state.tz);
  renderSorties(panel, chart, state.palette);
}

async function showLedger() {
  renderLedger($("tab-ledger"), await api.ledger(14));
}

async function showAudit() {
  renderAudit($("tab-audit"), await api.audit(), () => showAudit().catch(showError));
}

function toast(text, kind = "info") {
  const note = el("div", { class: `toast ${kind}`, role: "status", text });
  $("toasts").append(note);
  setTimeout(() => note.remove(), 8_000);
}

function showError(error) {
  console.error(error);
  toast(String(error.message || error), "error");
}

// --- map interaction --------------------------------------------------------------------------

const CLICKABLE = [...OBSERVATION_LAYERS, ...FUSED_LAYERS];
const SHAPE_ORDER = { symbol: 0, "fused-point": 1, track: 2, area: 3 };

function onMapClick(event) {
  const { x, y } = event.point;
  const hits = state.map.queryRenderedFeatures(
    [[x - 5, y - 5], [x + 5, y + 5]],
    { layers: CLICKABLE.filter((id) => state.map.getLayoutProperty(id, "visibility") !== "none") },
  );
  if (!hits.length) return;
  const distance = (feature) => {
    if (feature.geometry.type !== "Point") return 0;
    const at = state.map.project(feature.geometry.coordinates);
    return Math.hypot(at.x - x, at.y - y);
  };
  hits.sort(
    (a, b) =>
      SHAPE_ORDER[a.properties.shape] - SHAPE_ORDER[b.properties.shape] || distance(a) - distance(b),
  );
  const key = hits[0].properties.key;
  if (key.startsWith("fused:")) {
    const index = (state.fused || []).findIndex((item, n) => `fused:${item.id ?? n}` === key);
    if (index >= 0) {
      selectTab("detail");
      renderFusedDetail($("tab-detail"), state.fused[index], state, (source) =>
        showDetail(source.id, source.version).catch(showError),
      );
    }
    return;
  }
  showDetail(key).catch(showError);
}

// --- start ------------------------------------------------------------------------------------

function wireControls() {
  $("period-load").addEventListener("click", () => loadPeriod().catch(showError));
  $("replay-window").addEventListener("change", (e) => {
    state.windowHours = Number(e.target.value);
    configureSlider();
    render();
  });
  $("replay-slider").addEventListener("input", (e) => {
    state.sliderHours = Number(e.target.value);
    render();
  });
  let playing = null;
  $("replay-play").addEventListener("click", () => {
    const button = $("replay-play");
    if (playing) {
      clearInterval(playing);
      playing = null;
      button.textContent = "▶ play";
      return;
    }
    const slider = $("replay-slider");
    if (Number(slider.value) >= Number(slider.max)) slider.value = "0";
    button.textContent = "❚❚ pause";
    playing = setInterval(() => {
      slider.value = String(Number(slider.value) + 1);
      state.sliderHours = Number(slider.value);
      render();
      if (Number(slider.value) >= Number(slider.max)) button.click();
    }, 250);
  });
  for (const input of $("filter-kind").querySelectorAll("input")) {
    input.addEventListener("change", () => {
      if (input.checked) state.kinds.add(input.value);
      else state.kinds.delete(input.value);
      render();
    });
  }
  for (const input of $("layers").querySelectorAll("input")) {
    input.addEventListener("change", () => {
      const layers = input.value === "fused" ? FUSED_LAYERS : ZONE_LAYERS[input.value];
      setVisibility(state.map, layers, input.checked);
      if (input.value === "fused") refreshFused();
    });
  }
  for (const button of document.querySelectorAll("#tabs button")) {
    button.addEventListener("click", () => selectTab(button.dataset.tab));
  }
}

async function start() {
  const [status, catalogue, zones, basemap, me] = await Promise.all([
    api.status(),
    api.catalogue(),
    api.zones(),
    api.basemap(),
    api.whoami(),
  ]);
  $("operator").textContent = `${me.name} (${me.role})`;
  $("logout").hidden = me.via !== "session";
  $("logout").addEventListener("click", () => api.logout(me.csrf).catch(showError));
  state.status = status;
  state.symbols = new Symbols(catalogue, [status.party, ...status.partners]);
  state.palette = new Palette(status.party, status.partners);
  $("node-name").textContent = `${status.party} node ${status.node}`;
  document.title = `kuroshio ${status.party} — common operating picture`;

  const params = new URLSearchParams(window.location.search);
  const tz = params.get("tz") ?? "0";
  $("period-tz").value = [...$("period-tz").options].some((o) => o.value === tz) ? tz : "0";
  const [first, last] = defaultPeriod(status, Number($("period-tz").value));
  $("period-start").value = params.get("start") || first;
  $("period-end").value = params.get("end") || params.get("start") || last;

  state.hasFusion = await api.hasFusion();
  $("layer-fused").hidden = !state.hasFusion;
  state.map = createMap($("map"), basemap, zones);
  state.map.on("click", onMapClick);
  for (const id of CLICKABLE) {
    state.map.on("mouseenter", id, () => (state.map.getCanvas().style.cursor = "pointer"));
    state.map.on("mouseleave", id, () => (state.map.getCanvas().style.cursor = ""));
  }
  await new Promise((resolve) => state.map.once("load", resolve));
  wireControls();
  state.buffered = [];
  connectStream(status.stream_head);
  await loadPeriod();
  setInterval(() => pollEvents(true).catch(showError), EVENTS_POLL_MS);
  await showFeeds();
  setInterval(() => showFeeds().catch(showError), FEEDS_POLL_MS);
  document.body.dataset.ready = "true";
}

const FEEDS_POLL_MS = 5000;

/** The header says which live feeds are down (failing, being restarted) or not running. */
async function showFeeds() {
  const feeds = await api.feeds();
  const label = $("feeds");
  const up = feeds.filter((feed) => feed.state === "up");
  const down = feeds.filter((feed) => feed.state === "down");
  const idle = feeds.filter((feed) => feed.state !== "up" && feed.state !== "down");
  label.hidden = feeds.length === 0;
  label.className = down.length ? "feeds down" : idle.length ? "feeds idle" : "feeds up";
  const parts = [`feeds ${up.length}/${feeds.length} up`];
  if (down.length) parts.push(`down: ${down.map((feed) => feed.name).join(", ")}`);
  if (idle.length) parts.push(`not running: ${idle.map((feed) => feed.name).join(", ")}`);
  label.textContent = parts.join(" · ");
  label.title = feeds
    .map((feed) => `${feed.name} (${feed.kind}, ${feed.endpoint}): ${feed.state}` +
      (feed.status && feed.status.last_error ? ` — ${feed.status.last_error}` : ""))
    .join("\n");
  label.dataset.down = String(down.length);
}

// For operators' scripts and the browser tests: the map, and what it draws now.
window.cop = {
  get map() {
    return state.map;
  },
  renderedCount: () => renderedKeys(state.map).size,
  /** Resolves once the map has drawn everything it has (at once when it already has). */
  idle: () =>
    new Promise((resolve) => {
      const map = state.map;
      if (map.loaded() && map.areTilesLoaded() && !map.isMoving()) requestAnimationFrame(() => resolve());
      else map.once("idle", () => resolve());
    }),
  /** Centre the map and resolve once the new view is drawn. */
  centre: (lon, lat, zoom) =>
    new Promise((resolve) => {
      state.map.once("idle", () => resolve());
      state.map.jumpTo({ center: [lon, lat], zoom });
    }),
};

start().catch(showError);

// The common operating picture: one map with own and partner observations, live from this node.
import "maplibre-gl/dist/maplibre-gl.css";
import "./style.css";
import { api } from "./api.js";
import { forward as toMgrs } from "mgrs";
import { Palette, FUSED, areaFeatures, bounds, endMs, fusedFeatures, startMs } from "./features.js";
import { CLICKABLE_LAYERS, FUSED_LAYERS, ZONE_LAYERS, createMap, renderedKeys, select, setVisibility } from "./map.js";
import { LANGUAGES, chooseLanguage, formatTime, t } from "./i18n.js";
import { buildTracks, fusedIndex, headFeature, originMark, settle, trackKey, trailFeature } from "./tracks.js";
import {
  el,
  eventTitle,
  formatPosition,
  renderAudit,
  renderDetail,
  renderEvents,
  renderFusedDetail,
  renderLedger,
  renderMessages,
  messageCounts,
  renderSorties,
  renderTrackList,
} from "./panels.js";
import { Symbols, markSvg, symbolSvg } from "./symbols.js";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const FRESH_MS = 15_000;
const EVENTS_POLL_MS = 5_000;
const FUSED_EVERY_MS = 5_000; // live updates ask for the fused layer again at most this often
const FUSE_WITHOUT_ASKING = 2_000;
const MAX_FUSED_DAYS = 31;
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
  tracks: new Map(),
  fusedOf: new Map(),
  selected: null,
  shownHeads: new Set(),
  shownTrails: new Set(),
  changedTracks: new Set(),
  changesQueued: false,
  seenMessages: null,
  attached: [],
  incidents: [],
  filterValues: new Set(),
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

function visibleObservations(window) {
  const visible = [];
  for (const observation of state.observations.values()) if (isVisible(observation, window)) visible.push(observation);
  return visible;
}

function isFresh(track, now) {
  return (state.fresh.get(track.head.id) || 0) > now;
}

/** Draw everything again (a new period, filter or replay step); live updates use update(). */
function draw() {
  const window = replayWindow();
  const now = Date.now();
  const visible = visibleObservations(window);
  state.tracks = buildTracks(visible, state.fusedOf);
  state.changedTracks.clear();
  const heads = [];
  const trails = [];
  for (const track of state.tracks.values()) {
    const head = headFeature(track, state.symbols, state.palette, isFresh(track, now), state.tz);
    if (head) heads.push(head);
    const trail = trailFeature(track, state.palette);
    if (trail) trails.push(trail);
  }
  const areas = visible.filter((o) => o.kind === "area").flatMap((o) => areaFeatures(o, state.palette));
  state.map.getSource("heads").setData({ type: "FeatureCollection", features: heads });
  state.map.getSource("trails").setData({ type: "FeatureCollection", features: trails });
  state.map.getSource("areas").setData({ type: "FeatureCollection", features: areas });
  state.shownHeads = new Set(heads.map((f) => f.id));
  state.shownTrails = new Set(trails.map((f) => f.id));
  state.shown = visible.length;
  drawCounts();
  $("replay-time").textContent = window
    ? `${formatTime(iso(window[0]), state.tz)} → ${formatTime(iso(window[1]), state.tz)}`
    : t("wholePeriod");
  drawFused();
  if (state.tab === "tracks") showTracks();
}

function drawCounts() {
  const label = $("shown");
  label.textContent = t("shown", { shown: state.shown, loaded: state.observations.size, tracks: state.tracks.size });
  label.dataset.count = String(state.shown);
  label.dataset.loaded = String(state.observations.size);
  label.dataset.tracks = String(state.tracks.size);
  const outside = $("outside");
  outside.hidden = state.outside === 0;
  outside.textContent = t("outside", { n: state.outside });
}

/** Apply one stored observation to the map: only its track's head and trail change. */
function update(observation, previous) {
  const window = replayWindow();
  if (observation.kind === "area" || previous?.kind === "area") {
    render();
    return;
  }
  const key = trackKey(observation, state.fusedOf);
  const track = state.tracks.get(key);
  if (track && previous) track.items = track.items.filter((item) => item.id !== previous.id);
  if (previous && isVisible(previous, window)) state.shown -= 1;
  const visible = !observation.retracted && isVisible(observation, window);
  if (visible) {
    state.shown += 1;
    if (track) track.items.push(observation);
    else state.tracks.set(key, { key, origin: observation.origin, kind: observation.kind, items: [observation] });
  }
  // Many updates can arrive between two frames (a dense feed): the map takes them as one change.
  state.changedTracks.add(key);
  if (!state.changesQueued) {
    state.changesQueued = true;
    requestAnimationFrame(applyChanges);
  }
}

/** Redraw the tracks that live updates changed since the last frame, and only those. */
function applyChanges() {
  state.changesQueued = false;
  const diff = { heads: { remove: [], add: [] }, trails: { remove: [], add: [] } };
  const now = Date.now();
  for (const key of state.changedTracks) {
    if (state.shownHeads.has(key)) diff.heads.remove.push(key);
    if (state.shownTrails.has(key)) diff.trails.remove.push(key);
    state.shownHeads.delete(key);
    state.shownTrails.delete(key);
    const changed = state.tracks.get(key);
    if (!changed || !changed.items.length) {
      state.tracks.delete(key);
      continue;
    }
    settle(changed);
    const head = headFeature(changed, state.symbols, state.palette, isFresh(changed, now), state.tz);
    if (head) {
      diff.heads.add.push(head);
      state.shownHeads.add(key);
    }
    const trail = trailFeature(changed, state.palette);
    if (trail) {
      diff.trails.add.push(trail);
      state.shownTrails.add(key);
    }
  }
  state.changedTracks.clear();
  state.map.getSource("heads").updateData(diff.heads);
  state.map.getSource("trails").updateData(diff.trails);
  drawCounts();
}

function drawFused() {
  const window = replayWindow();
  const items = (state.fused || []).filter(
    (item) => !window || (Date.parse(item.end) >= window[0] && Date.parse(item.start) < window[1]),
  );
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
  state.filterValues = new Set(origins);
  if (state.hasFusion) origins.add(FUSED);
  const originBox = $("filter-origin");
  const present = new Set([...originBox.querySelectorAll("input")].map((i) => i.value));
  for (const origin of [...origins].sort()) {
    if (present.has(origin)) continue;
    const role = state.palette.role(origin);
    const swatch = el("span", { class: "swatch", style: `background:${state.palette.colour(origin)}` });
    originBox.append(
      checkbox(origin, origin === FUSED ? t("fusedSources") : `${origin} (${t(role)})`, !state.hidden.origins.has(origin), (on) => {
        if (on) state.hidden.origins.delete(origin);
        else state.hidden.origins.add(origin);
        render();
      }, swatch),
    );
  }
  const classes = new Set();
  for (const observation of state.observations.values()) classes.add(platformClass(observation));
  for (const name of classes) state.filterValues.add(name);
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

function legendMark(origin) {
  const holder = el("span", { class: "legend-symbol" });
  const shape = origin === FUSED ? "square" : originMark(origin, state.palette).slice(5);
  const template = document.createElement("template");
  template.innerHTML = markSvg(shape, state.palette.colour(origin));
  holder.append(template.content.firstElementChild);
  return holder;
}

function refreshLegend(origins) {
  const items = [...origins].sort().map((origin) =>
    el("li", {}, legendMark(origin), ` ${origin === FUSED ? t("fusedSources") : `${origin} — ${t(state.palette.role(origin))}`}`),
  );
  const examples = [
    ["10060100001101040000", t("hostileFighter")],
    ["10063000001202030000", t("hostileDestroyer")],
    ["10030100001101040000", t("friendlyFighter")],
  ].map(([sidc, text]) => {
    const holder = el("span", { class: "legend-symbol" });
    const template = document.createElement("template");
    template.innerHTML = symbolSvg(sidc, 18);
    holder.append(template.content.firstElementChild);
    return el("li", {}, holder, ` ${text}`);
  });
  $("legend").replaceChildren(
    ...items,
    el("li", {}, el("span", { class: "legend-line" }), ` ${t("trackLine")}`),
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
  const search = new URLSearchParams({ start: state.startDay, end: state.endDay, tz: String(state.tz), lang: $("lang").value });
  history.replaceState(null, "", `?${search}`);
  $("period-hint").textContent = t("loading");
  state.buffered = state.buffered || [];
  state.outside = 0;
  const items = await api.observations(iso(state.periodStart), iso(state.periodEnd), (n) => {
    $("period-hint").textContent = `${t("loading")} ${n}`;
  });
  state.observations = new Map(items.map((o) => [o.id, o]));
  const buffered = state.buffered;
  state.buffered = null;
  for (const observation of buffered) receive(observation);
  $("period-hint").textContent = t("loadedPeriod", { n: items.length, start: state.startDay, end: state.endDay });
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
    if (known) update(observation, known);
    return;
  }
  if (!(endMs(observation) >= state.periodStart && startMs(observation) < state.periodEnd)) {
    state.outside += 1;
    drawCounts();
    return;
  }
  state.observations.set(observation.id, observation);
  state.fresh.set(observation.id, Date.now() + FRESH_MS);
  if (!state.filterValues.has(observation.origin) || !state.filterValues.has(platformClass(observation))) refreshFilters();
  update(observation, known);
  scheduleEventPoll();
  scheduleFused();
}

const STREAM_AGAIN_MS = 2_000;
const STREAM_AGAIN_MAX_MS = 30_000;

/** The live stream, from event `after` on, for as long as the page is open. The browser
 * reconnects a dropped stream by itself, but gives it up for good when the node answers with
 * anything but a stream (a 503 while its database restarts): the page then opens a new one,
 * from the last event it had, waiting longer each time it fails. */
function connectStream(after) {
  const live = $("live");
  let last = after;
  let failures = 0;
  const open = () => {
    const source = new EventSource(`/api/stream?after=${last}`);
    source.addEventListener("open", () => {
      failures = 0;
      live.className = "live on";
      live.dataset.i18n = "live";
      live.textContent = t("live");
    });
    source.addEventListener("error", () => {
      live.className = "live off";
      live.dataset.i18n = "reconnecting";
      live.textContent = t("reconnecting");
      if (source.readyState === EventSource.CLOSED) {
        const wait = Math.min(STREAM_AGAIN_MS * 2 ** failures, STREAM_AGAIN_MAX_MS);
        failures += 1;
        setTimeout(open, wait);
      }
    });
    source.addEventListener("observation", (message) => {
      if (message.lastEventId) last = message.lastEventId;
      receive(JSON.parse(message.data));
    });
  };
  open();
}

// --- events feed with alerts ------------------------------------------------------------------

// Asked for by each live update, done at most every EVENT_ALERT_MS: a steady feed must not keep
// putting the events (and their alerts) off.
const EVENT_ALERT_MS = 500;
let eventTimer = null;
function scheduleEventPoll() {
  if (eventTimer !== null) return;
  eventTimer = setTimeout(() => {
    eventTimer = null;
    pollEvents(true).catch(showError);
  }, EVENT_ALERT_MS);
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
  if (fusedTimer !== null || !fusedWanted()) return;
  fusedTimer = setTimeout(() => {
    fusedTimer = null;
    refreshFused();
  }, FUSED_EVERY_MS);
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
  label.hidden = false;
  if (state.periodEnd - state.periodStart > MAX_FUSED_DAYS * DAY) {
    // the node fuses at most 31 days at once: say so, rather than show its refusal
    state.fused = null;
    label.textContent = t("fusedTooLong", { days: MAX_FUSED_DAYS });
    drawFused();
    return;
  }
  const fusing = new AbortController();
  state.fusing = fusing;
  label.textContent = t("fusing");
  try {
    const all = await api.fused(iso(state.periodStart), iso(state.periodEnd), fusing.signal);
    state.fused = (all || []).filter((item) => item.jointly_seen !== false);
    state.fusedOf = fusedIndex(all);
    label.textContent = t("fusedCount", { n: state.fused.length });
    render();
  } catch (error) {
    if (fusing.signal.aborted) return;
    state.fused = null;
    label.textContent = t("fusedFailed", { reason: error.status ? `${error.status}` : error.message });
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
    const chosen = button.dataset.tab === name;
    button.setAttribute("aria-selected", String(chosen));
    button.tabIndex = chosen ? 0 : -1;
  }
  for (const panel of document.querySelectorAll("#side [role=tabpanel]")) {
    panel.hidden = panel.id !== `tab-${name}`;
  }
  if (name === "events") {
    state.unseenEvents = 0;
    $("events-badge").hidden = true;
  }
  const loaders = { sorties: showSorties, ledger: showLedger, audit: showAudit, messages: showMessages, tracks: async () => showTracks() };
  if (loaders[name]) loaders[name]().catch(showError);
}

function choose(key) {
  state.selected = key;
  select(state.map, key);
  for (const item of document.querySelectorAll("#track-list [role=option]")) {
    item.setAttribute("aria-selected", String(item.dataset.key === key));
  }
}

async function showDetail(id, version, key = null) {
  const panel = $("tab-detail");
  if (state.tab !== "detail") selectTab("detail");
  choose(key || trackKeyOf(id));
  panel.replaceChildren(el("p", { class: "hint", text: t("loading") }));
  const detail = await api.detail(id, version);
  renderDetail(panel, detail, { ...state, track: state.tracks.get(state.selected) });
}

function trackKeyOf(id) {
  const observation = state.observations.get(id);
  return observation ? trackKey(observation, state.fusedOf) : id;
}

function showTracks() {
  renderTrackList($("tab-tracks"), [...state.tracks.values()], state, (track) => {
    const [lon, lat] = track.head.geometry.type === "Point" ? track.head.geometry.coordinates : [null, null];
    if (lon !== null) state.map.easeTo({ center: [lon, lat], zoom: Math.max(state.map.getZoom(), 7), duration: 0 });
    choose(track.key);
    return showDetail(track.head.id, undefined, track.key).then(() => selectTab("tracks"));
  });
}

async function showSorties() {
  const panel = $("tab-sorties");
  const chart = await api.sorties(state.startDay, state.endDay, state.tz);
  renderSorties(panel, chart, state.palette);
}

async function showMessages() {
  const messages = await api.messages();
  renderMessages($("tab-messages"), messages, { tz: state.tz, onAttachments: showAttachments });
  showMessageBadge(messages);
  announce(messages);
}

const MESSAGES_POLL_MS = 5_000;

/** Look for new messages now and then: each one that came in is announced, an alert as such. */
async function pollMessages() {
  const messages = await api.messages();
  showMessageBadge(messages);
  const fresh = announce(messages);
  if (fresh && state.tab === "messages") {
    renderMessages($("tab-messages"), messages, { tz: state.tz, onAttachments: showAttachments });
  }
}

/** Toast each message received since the last look (none on the first: those are known); how
 * many there were. */
function announce(messages) {
  const first = state.seenMessages === null;
  state.seenMessages ??= new Set();
  let fresh = 0;
  for (const item of [...messages].reverse()) {
    const id = item.message.id;
    if (state.seenMessages.has(id)) continue;
    state.seenMessages.add(id);
    if (first || item.direction !== "in") continue;
    fresh += 1;
    const words = { party: item.partner, subject: item.message.subject, precedence: item.message.precedence };
    if (item.message.kind === "alert") toast(t("alertFrom", words), "event");
    else toast(t("messageFrom", words), item.message.precedence === "flash" ? "event" : "info");
  }
  return fresh;
}

/** Draw what a message is about (observations as given, tracks held here, its area) and
 * bring it into view. */
function showAttachments(attachments) {
  const features = [];
  for (const observation of attachments.observations) {
    const geometry = observation.geometry;
    if (geometry.type === "LineString") {
      features.push({ type: "Feature", properties: { id: observation.id }, geometry: { type: "Point", coordinates: geometry.coordinates.at(-1) } });
    } else features.push({ type: "Feature", properties: { id: observation.id }, geometry });
  }
  const tracks = new Set(attachments.tracks);
  if (tracks.size) {
    for (const observation of state.observations.values()) {
      if (observation.track && tracks.has(observation.track) && observation.geometry.type === "Point") {
        features.push({ type: "Feature", properties: { id: observation.id }, geometry: observation.geometry });
      }
    }
  }
  if (attachments.area) features.push({ type: "Feature", properties: { id: "area" }, geometry: attachments.area });
  state.map.getSource("attached").setData({ type: "FeatureCollection", features });
  state.attached = features.map((feature) => feature.properties.id);
  const points = features.flatMap((feature) =>
    feature.geometry.type === "Point" ? [feature.geometry.coordinates] : feature.geometry.coordinates.flat(1));
  if (!points.length) return;
  const lons = points.map((p) => p[0]);
  const lats = points.map((p) => p[1]);
  state.map.fitBounds([[Math.min(...lons), Math.min(...lats)], [Math.max(...lons), Math.max(...lats)]], { padding: 120, maxZoom: 8, duration: 0 });
}

/** The incidents layer: each incident's datum (grey once closed) and its search areas. */
async function showIncidents() {
  const incidents = await api.incidents();
  const features = [];
  for (const incident of incidents) {
    const properties = { id: incident.id, title: incident.title, kind: incident.kind, status: incident.status };
    features.push({ type: "Feature", properties: { ...properties, part: "datum" }, geometry: incident.datum });
    for (const area of incident.search_areas) {
      features.push({ type: "Feature", properties: { ...properties, part: "search-area" }, geometry: area });
    }
  }
  state.incidents = incidents;
  state.map.getSource("incidents").setData({ type: "FeatureCollection", features });
}

function showMessageBadge(messages) {
  const counts = messageCounts(messages);
  const badge = $("messages-badge");
  badge.textContent = String(counts.unread + counts.escalated);
  badge.hidden = counts.unread + counts.escalated === 0;
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

const CLICKABLE = [...CLICKABLE_LAYERS, ...FUSED_LAYERS];
const LAYER_ORDER = { "head-symbols": 0, "head-marks": 0, clusters: 1, "fused-points": 2, trails: 3, "fused-tracks": 3, "obs-areas": 4, "fused-areas": 4 };

function onMapClick(event) {
  const { x, y } = event.point;
  const hits = state.map.queryRenderedFeatures(
    [[x - 6, y - 6], [x + 6, y + 6]],
    { layers: CLICKABLE.filter((id) => state.map.getLayoutProperty(id, "visibility") !== "none") },
  );
  if (!hits.length) {
    choose(null);
    return;
  }
  const distance = (feature) => {
    if (feature.geometry.type !== "Point") return 0;
    const at = state.map.project(feature.geometry.coordinates);
    return Math.hypot(at.x - x, at.y - y);
  };
  hits.sort((a, b) => (LAYER_ORDER[a.layer.id] ?? 9) - (LAYER_ORDER[b.layer.id] ?? 9) || distance(a) - distance(b));
  const hit = hits[0];
  if (hit.layer.id === "clusters") {
    state.map.easeTo({ center: hit.geometry.coordinates, zoom: Math.min(state.map.getZoom() + 2, 9), duration: 0 });
    return;
  }
  const key = hit.properties.key;
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
  showDetail(hit.properties.id || key, undefined, key).catch(showError);
}

function showCursor(event) {
  const { lng, lat } = event.lngLat;
  let grid = "";
  try {
    grid = toMgrs([lng, lat], 5).replace(/^(\d+[A-Z])([A-Z]{2})(\d{5})(\d{5})$/, "$1 $2 $3 $4");
  } catch {
    grid = "—"; // outside MGRS (the poles)
  }
  const out = $("cursor");
  out.textContent = `${formatPosition(lat, lng)} · MGRS ${grid}`;
  out.dataset.lat = lat.toFixed(5);
  out.dataset.lon = lng.toFixed(5);
  out.dataset.mgrs = grid;
}

function wireTabKeys() {
  const tabs = [...document.querySelectorAll("#tabs [role=tab]")];
  $("tabs").addEventListener("keydown", (event) => {
    const at = tabs.indexOf(document.activeElement);
    if (at < 0) return;
    const next = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: tabs.length - 1 }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    const tab = tabs[(next + tabs.length) % tabs.length];
    tab.focus();
    selectTab(tab.dataset.tab);
  });
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
      button.textContent = t("play");
      return;
    }
    const slider = $("replay-slider");
    if (Number(slider.value) >= Number(slider.max)) slider.value = "0";
    button.textContent = t("pause");
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
  wireTabKeys();
  $("lang").addEventListener("change", (event) => {
    chooseLanguage(event.target.value);
    const search = new URLSearchParams(window.location.search);
    search.set("lang", event.target.value);
    history.replaceState(null, "", `?${search}`);
    refreshLegend(new Set([...$("filter-origin").querySelectorAll("input")].map((i) => i.value)));
    draw();
    if (state.tab !== "detail") selectTab(state.tab);
  });
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
  const lang = chooseLanguage(params.get("lang") || (navigator.language || "en").slice(0, 2));
  $("lang").replaceChildren(...Object.entries(LANGUAGES).map(([code, name]) => el("option", { value: code, text: name })));
  $("lang").value = lang;
  const tz = params.get("tz") ?? "0";
  $("period-tz").value = [...$("period-tz").options].some((o) => o.value === tz) ? tz : "0";
  const [first, last] = defaultPeriod(status, Number($("period-tz").value));
  $("period-start").value = params.get("start") || first;
  $("period-end").value = params.get("end") || params.get("start") || last;

  state.hasFusion = await api.hasFusion();
  $("layer-fused").hidden = !state.hasFusion;
  const firstPartner = [...status.partners].sort()[0];
  state.map = createMap($("map"), basemap, zones, {
    party: status.party,
    colour: state.palette.colour(status.party),
    partnerColour: firstPartner ? state.palette.colour(firstPartner) : "#455a64",
  });
  state.map.on("click", onMapClick);
  state.map.on("mousemove", showCursor);
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
  await pollMessages().catch(() => {}); // a node whose operator may not read messages has none
  setInterval(() => pollMessages().catch(() => {}), MESSAGES_POLL_MS);
  await showIncidents().catch(() => {});
  setInterval(() => showIncidents().catch(() => {}), MESSAGES_POLL_MS);
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
  /** Heads drawn in view now (symbols and the tracks inside drawn clusters). */
  rendered: (layers) => state.map.queryRenderedFeatures({ layers }).map((f) => ({ ...f.properties, layer: f.layer.id })),
  get selected() {
    return state.selected;
  },
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

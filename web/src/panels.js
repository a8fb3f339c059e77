// The side panels: one observation's detail, the events feed, daily sorties, the reciprocity
// ledger and the audit chain. Each renders what the node's API returns; none computes policy.
import { forward as toMgrs } from "mgrs";
import { formatTime, t } from "./i18n.js";
import { motion } from "./tracks.js";
import { symbolSvg } from "./symbols.js";

export { formatTime };

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replace a panel's content, leaving out absent parts. */
function fill(container, ...children) {
  container.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
}

/** An inline SVG from milsymbol's markup (generated locally from a SIDC, not user text). */
function svgNode(markup) {
  const template = document.createElement("template");
  template.innerHTML = markup;
  return template.content.firstElementChild;
}

function degreesMinutes(value, positive, negative) {
  const whole = Math.floor(Math.abs(value));
  const minutes = (Math.abs(value) - whole) * 60;
  return `${whole}°${minutes.toFixed(2).padStart(5, "0")}′${value >= 0 ? positive : negative}`;
}

/** 24°31.20′N 121°05.40′E */
export function formatPosition(lat, lon) {
  return `${degreesMinutes(lat, "N", "S")} ${degreesMinutes(lon, "E", "W")}`;
}

function mgrsOf(lat, lon) {
  try {
    return toMgrs([lon, lat], 5).replace(/^(\d+[A-Z])([A-Z]{2})(\d{5})(\d{5})$/, "$1 $2 $3 $4");
  } catch {
    return "—";
  }
}

/** An event's time: as observed, or, when it is an estimate, the span it lies in (marked ~). */
export function formatEventTime(event, tzMinutes) {
  const span = event.interval;
  if (!event.estimated || !span) return formatTime(event.at, tzMinutes);
  const start = formatTime(span.start, tzMinutes);
  const end = formatTime(span.end, tzMinutes);
  const sameDay = start.slice(0, 10) === end.slice(0, 10);
  return `~ ${start.replace(/ (UTC.*|Z)$/, "")} – ${sameDay ? end.slice(11) : end}`;
}

function row(name, ...value) {
  return el("tr", {}, el("th", { scope: "row", text: name }), el("td", {}, ...value));
}

function headPosition(geometry) {
  if (geometry.type === "Point") return geometry.coordinates;
  if (geometry.type === "LineString") return geometry.coordinates.at(-1);
  if (geometry.type === "MultiLineString") return geometry.coordinates.at(-1).at(-1);
  return null;
}

/** Position, course, speed and altitude rows of an observation (of its track when it has one). */
function motionRows(observation, track) {
  const at = headPosition(observation.geometry);
  const moving = track && track.head.id === observation.id ? motion(track) : {
    course: observation.kinematics?.course_deg ?? null,
    speed: observation.kinematics?.speed_mps ?? null,
    altitude: observation.kinematics?.altitude_m ?? null,
  };
  const rows = [];
  if (at) {
    const [lon, lat] = at;
    rows.push(row(t("position"), el("span", { id: "detail-position", text: formatPosition(lat, lon) }), el("br"), el("small", { text: `MGRS ${mgrsOf(lat, lon)}` })));
  }
  if (moving.course !== null) rows.push(row(t("course"), el("span", { id: "detail-course", text: `${String(Math.round(moving.course)).padStart(3, "0")}°` })));
  if (moving.speed !== null) {
    rows.push(row(t("speed"), el("span", { id: "detail-speed", text: `${Math.round(moving.speed * 1.943844)} kt` }), ` (${Math.round(moving.speed * 3.6)} km/h)`));
  }
  if (moving.altitude !== null) {
    rows.push(row(t("altitude"), `${Math.round(moving.altitude * 3.28084).toLocaleString()} ft (${Math.round(moving.altitude)} m)`));
  }
  if (track && track.items.length > 1) rows.push(row(t("updates"), String(track.items.length)));
  return rows;
}

// --- detail -----------------------------------------------------------------------------------

export function renderDetail(container, detail, context) {
  const { observation, platform, versions, verification } = detail;
  const tz = context.tz;
  const kind = observation.platform || {};
  const marking = observation.marking;
  const provenance = observation.provenance;
  const sidc = context.symbols.sidc(observation);
  const transforms = provenance.transforms || [];
  fill(container, 
    el(
      "div",
      { class: "detail-head" },
      sidc ? svgNode(symbolSvg(sidc, 30)) : null,
      el(
        "div",
        {},
        el("h3", { id: "detail-title", text: platform?.en || kind.type || kind.platform_class || observation.kind }),
        platform
          ? el(
              "p",
              { class: "names" },
              el("span", { lang: "zh-Hant", class: "name-zh", text: platform.zh }),
              " · ",
              el("span", { lang: "ja", class: "name-ja", text: platform.ja }),
            )
          : null,
      ),
    ),
    transforms.length
      ? el(
          "div",
          { class: "transforms", id: "detail-transforms" },
          el("strong", { text: t("transforms") }),
          el("ul", {}, transforms.map((text) => el("li", { text }))),
        )
      : null,
    el(
      "table",
      { class: "facts" },
      el(
        "tbody",
        {},
        row("Id", el("code", { text: observation.id }), ` v${observation.version}`,
          versions.length > 1 ? ` (versions ${versions.join(", ")})` : ""),
        ...motionRows(observation, context.track),
        row(t("platform"), [kind.type, kind.platform_class].filter(Boolean).join(" · ") || "—",
          kind.label && kind.label !== kind.type ? ` (source: ${kind.label})` : ""),
        row(t("count"), String(kind.count ?? 1),
          observation.crossed_median_line != null ? ` (${observation.crossed_median_line} crossed the median line)` : ""),
        kind.classes?.length ? row("Classes", kind.classes.join(", ")) : null,
        row(t("nationality"), [kind.nationality, kind.service].filter(Boolean).join(" · ") || "—"),
        row(t("observed"), formatTime(observation.observed_at, tz)),
        row(t("until"), formatTime(observation.until, tz)),
        row(t("origin"), el("span", { class: "swatch", style: `background:${context.palette.colour(observation.origin)}` }), ` ${observation.origin}`),
        row(t("marking"), `TLP:${marking.tlp}`,
          marking.releasable_to.length ? ` · releasable to ${marking.releasable_to.join(", ")}` : "",
          marking.control.rerelease
            ? ` · re-release ${marking.control.to.length ? `to ${marking.control.to.join(", ")}` : "allowed"}, ${marking.control.max_hops} hops`
            : " · no re-release"),
        row(t("sensor"), `${observation.source.sensor}, confidence ${observation.source.confidence}`,
          observation.source.uncertainty_m ? `, ±${Math.round(observation.source.uncertainty_m)} m` : ""),
        row(t("provenance"),
          provenance.partner ? `from ${provenance.partner}, batch ${provenance.batch ?? "—"}, ${provenance.hops} hop(s)` : "",
          provenance.importer ? `${provenance.importer} ${provenance.record ? `(${provenance.record})` : ""}` : "",
          !provenance.partner && !provenance.importer ? "entered on this node" : ""),
        row(t("verification"),
          el("span", { class: `verification ${verification.status}`, id: "detail-verification", text: verification.status }),
          ` ${verification.detail}`),
        observation.approaches?.length
          ? row("Closest approach", el("ul", { id: "detail-approaches" },
              observation.approaches.map((a) => el("li", { text: `about ${a.distance_nmi} nmi from ${a.place}` }))))
          : null,
        observation.remarks ? row(t("remarks"), observation.remarks) : null,
      ),
    ),
  );
}

export function renderFusedDetail(container, item, context, onSource) {
  const sources = Array.isArray(item.sources) ? item.sources : [];
  const platform = item.platform || {};
  const counts = item.counts || {};
  fill(container, 
    el("h3", { id: "detail-title", text: `Fused sortie: ${platform.type || platform.platform_class || item.kind || ""}${platform.count > 1 ? ` ×${platform.count}` : ""}` }),
    el(
      "table",
      { class: "facts" },
      el(
        "tbody",
        {},
        row("Reported by", Object.entries(counts).map(([party, n]) => `${party} ${n}`).join(" · ") || (item.origins || []).join(", ")),
        row("From", formatTime(item.start, context.tz)),
        row("Until", formatTime(item.end, context.tz)),
        item.uncertainty_m ? row("Position", `±${Math.round(item.uncertainty_m)} m (the most precise source)`) : null,
      ),
    ),
    el("h4", { text: `Sources (${sources.length}), each counted once` }),
    el(
      "ul",
      {},
      sources.map((source) =>
        el("li", {}, el("button", { type: "button", class: "link", text: `${source.origin} · ${source.id} v${source.version}`, onclick: () => onSource(source) })),
      ),
    ),
  );
}

// --- events -----------------------------------------------------------------------------------

const EVENT_WORDS = {
  adiz_entry: "ADIZ entry",
  zone_entry: "zone entry",
  median_line_crossing: "median-line crossing",
  strait_transit: "strait transit",
  area_active: "area active",
};

export function eventTitle(event) {
  const platform = event.platform || {};
  const what = platform.type || platform.platform_class || "";
  const count = platform.count && platform.count > 1 ? ` ×${platform.count}` : "";
  return `${EVENT_WORDS[event.kind] || event.kind}: ${event.zone}${event.direction ? ` (${event.direction})` : ""}${what ? ` — ${what}${count}` : ""}`;
}

export function renderEvents(list, summary, events, fresh, context, onPick) {
  const sorted = [...events].sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
  const shown = sorted.slice(0, 500);
  summary.textContent = `${events.length} events in the period${events.length > shown.length ? `, newest ${shown.length} listed` : ""}`;
  list.replaceChildren(
    ...shown.map((event) =>
      el(
        "li",
        { class: `event ${event.kind}${fresh.has(event.id) ? " fresh" : ""}`, "data-id": event.id },
        el("time", {
          text: formatEventTime(event, context.tz),
          class: event.estimated ? "estimated" : null,
          title: event.estimated ? "estimated: it happened within this span, not at a time observed" : null,
        }),
        el("button", { type: "button", class: "link", text: eventTitle(event), onclick: () => onPick(event) }),
        el("span", { class: "origin", text: event.origin }),
      ),
    ),
  );
}

// --- sorties chart ----------------------------------------------------------------------------

const CLASS_COLOURS = [
  "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666",
  "#1f78b4", "#b2df8a", "#fb9a99", "#cab2d6", "#ff7f00", "#6a3d9a", "#b15928",
];

export function renderSorties(container, chart, palette) {
  const svgNs = "http://www.w3.org/2000/svg";
  const classes = [...new Set(chart.series.map((s) => s.platform_class))];
  const classColour = new Map(classes.map((name, n) => [name, CLASS_COLOURS[n % CLASS_COLOURS.length]]));
  const children = [
    el("p", { class: "hint", text: `${chart.days[0]} – ${chart.days.at(-1)}: aircraft and ships reported per day, by class` }),
  ];
  if (!chart.series.length) children.push(el("p", { text: "No sorties in the period." }));
  for (const origin of chart.origins) {
    const series = chart.series.filter((s) => s.origin === origin);
    const totals = chart.days.map((_, day) => series.reduce((sum, s) => sum + s.counts[day], 0));
    const peak = Math.max(1, ...totals);
    const width = 320, height = 140, left = 28, bottom = 18;
    const barWidth = Math.max(1, (width - left) / chart.days.length - 1);
    const svg = document.createElementNS(svgNs, "svg");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("class", "chart");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", `Daily sorties reported by ${origin}`);
    const scale = (height - bottom - 4) / peak;
    chart.days.forEach((day, index) => {
      let y = height - bottom;
      for (const s of series) {
        const value = s.counts[index];
        if (!value) continue;
        const rect = document.createElementNS(svgNs, "rect");
        rect.setAttribute("x", String(left + index * (barWidth + 1)));
        rect.setAttribute("y", String(y - value * scale));
        rect.setAttribute("width", String(barWidth));
        rect.setAttribute("height", String(value * scale));
        rect.setAttribute("fill", classColour.get(s.platform_class));
        const title = document.createElementNS(svgNs, "title");
        title.textContent = `${day} ${s.platform_class}: ${value}`;
        rect.append(title);
        svg.append(rect);
        y -= value * scale;
      }
    });
    for (const [value, label] of [[0, "0"], [peak, String(peak)]]) {
      const text = document.createElementNS(svgNs, "text");
      text.setAttribute("x", "2");
      text.setAttribute("y", String(height - bottom - value * scale + 4));
      text.setAttribute("class", "axis");
      text.textContent = label;
      svg.append(text);
    }
    for (const index of [0, chart.days.length - 1]) {
      const text = document.createElementNS(svgNs, "text");
      text.setAttribute("x", String(left + index * (barWidth + 1)));
      text.setAttribute("y", String(height - 4));
      text.setAttribute("class", "axis");
      if (index > 0) text.setAttribute("text-anchor", "end");
      text.textContent = chart.days[index].slice(5);
      svg.append(text);
    }
    const total = totals.reduce((a, b) => a + b, 0);
    children.push(
      el("h3", {}, el("span", { class: "swatch", style: `background:${palette.colour(origin)}` }), ` ${origin}: ${total} sorties`),
      svg,
    );
  }
  children.push(
    el(
      "ul",
      { class: "chart-legend" },
      classes.map((name) => el("li", {}, el("span", { class: "swatch", style: `background:${classColour.get(name)}` }), ` ${name}`)),
    ),
  );
  fill(container, ...children);
}

// --- ledger -----------------------------------------------------------------------------------

const number = (value, unit = "") => (value === null || value === undefined ? "—" : `${Math.round(value)}${unit}`);

export function renderLedger(container, view) {
  if (view === null) {
    fill(container, el("p", { class: "hint", text: "This node keeps no reciprocity ledger." }));
    return;
  }
  if (view.denied) {
    fill(container, el("p", { class: "hint", text: "The reciprocity ledger needs the liaison role." }));
    return;
  }
  const children = [el("h3", { text: `Reciprocity ledger of ${view.party}` })];
  if (!view.partners.length) {
    children.push(el("p", { text: "No partner pinned and nothing exchanged yet." }));
  }
  for (const partner of view.partners) {
    const status = partner.status;
    children.push(
      el("h4", { text: `${view.party} ⇄ ${partner.partner} (${partner.agreement || "no agreement in force"})` }),
      status ? el("p", { class: status.shortfall ? "warning" : "ok", text: status.message }) : null,
      el("div", { class: "table-scroll" }, el(
        "table",
        { class: "ledger" },
        el("thead", {}, el("tr", {}, ["day", "given", "sorties", "received", "sorties", "novel", "delay", "grid km"].map((h) => el("th", { text: h })))),
        el(
          "tbody",
          {},
          [...partner.days].reverse().map((day) =>
            el(
              "tr",
              {},
              el("td", { text: day.day }),
              el("td", { text: day.given.items }),
              el("td", { text: day.given.sorties }),
              el("td", { text: day.received.items }),
              el("td", { text: day.received.sorties }),
              el("td", { text: day.received.novel_items }),
              el("td", { text: number(day.received.timeliness_s, " s") }),
              el("td", { text: number(day.received.precision_km) }),
            ),
          ),
        ),
      )),
    );
  }
  fill(container, ...children);
}

// --- messages ---------------------------------------------------------------------------------

const PRECEDENCE_RANK = { routine: 0, priority: 1, immediate: 2, flash: 3 };

/** Counts the watch officer acts on: received and not yet read, sent and not yet acknowledged
 * (replies and acknowledgements close a question and are never awaited), escalated. */
export function messageCounts(messages) {
  const awaited = (m) => m.direction === "out" && !["ack", "reply"].includes(m.message.kind) && m.state !== "acked";
  return {
    unread: messages.filter((m) => m.direction === "in" && m.state === "delivered").length,
    unacknowledged: messages.filter(awaited).length,
    escalated: messages.filter((m) => m.state === "escalated").length,
  };
}

export function renderMessages(container, messages, context) {
  const counts = messageCounts(messages);
  const threads = new Map();
  for (const item of [...messages].reverse()) {
    const key = item.message.thread;
    if (!threads.has(key)) threads.set(key, []);
    threads.get(key).push(item);
  }
  const summary = el("p", {
    id: "messages-counts",
    "data-unread": counts.unread,
    "data-unacknowledged": counts.unacknowledged,
    "data-escalated": counts.escalated,
    text: t("messageCounts", { threads: threads.size, unread: counts.unread, unacknowledged: counts.unacknowledged, escalated: counts.escalated }),
  });
  const list = [...threads.values()].reverse().map((thread) => {
    const top = thread.reduce((a, b) => (PRECEDENCE_RANK[b.message.precedence] > PRECEDENCE_RANK[a.message.precedence] ? b : a));
    return el(
      "section",
      { class: `thread precedence-${top.message.precedence}`, "data-thread": thread[0].message.thread },
      el("h4", { text: `${thread[0].message.subject} — ${thread[0].partner} (${top.message.precedence})` }),
      el("ol", {}, thread.map((m) =>
        el(
          "li",
          { class: `message state-${m.state}`, "data-id": m.message.id },
          el("span", { class: "when", text: formatTime(m.message.sent_at, context.tz) }),
          el("span", { text: ` ${m.direction === "out" ? "→" : "←"} ${m.partner} ${m.message.kind} ` }),
          el("strong", { text: m.state }),
          el("span", { text: ` ${m.message.subject}` }),
          m.message.attachments.observations.length || m.message.attachments.tracks.length || m.message.attachments.area
            ? el(
              "span",
              { class: "attached" },
              ` — ${t("attached")}: ${[
                ...m.message.attachments.observations.map((o) => o.id),
                ...m.message.attachments.tracks,
                ...(m.message.attachments.area ? ["area"] : []),
              ].join(", ")} `,
              context.onAttachments
                ? el("button", { type: "button", class: "link show-attached", text: t("showOnMap"), onclick: () => context.onAttachments(m.message.attachments) })
                : null,
            )
            : null,
        )),
      ),
    );
  });
  fill(container, el("h3", { text: t("messages") }), summary, ...(list.length ? list : [el("p", { class: "hint", text: t("noMessages") })]));
}

// --- audit ------------------------------------------------------------------------------------

export function renderAudit(container, view, onRefresh) {
  fill(container, 
    el("h3", { text: "Audit log" }),
    el("p", {
      id: "audit-state",
      class: view.ok ? "ok" : "warning",
      text: view.ok
        ? `Chain verified: ${view.checked} entries, head seq ${view.head_seq} ${view.head_hash.slice(0, 16)}…`
        : `Chain broken: ${view.problems.length} problem(s) in ${view.checked} entries`,
    }),
    view.problems.length
      ? el("ul", {}, view.problems.map((p) => el("li", { text: `seq ${p.seq}: ${p.reason} — ${p.detail}` })))
      : null,
    el("button", { type: "button", onclick: onRefresh, text: "Verify again" }),
  );
}

// --- tracks list (the map's items, for the keyboard) -------------------------------------------

const LIST_MAX = 500;

export function renderTrackList(container, tracks, context, onPick) {
  const sorted = [...tracks].sort((a, b) => Date.parse(b.head.until || b.head.observed_at) - Date.parse(a.head.until || a.head.observed_at));
  const shown = sorted.slice(0, LIST_MAX);
  const list = el("ul", { id: "track-list", role: "listbox", "aria-label": t("tracksTab"), tabindex: "0" });
  for (const track of shown) {
    const head = track.head;
    const platform = head.platform || {};
    const what = `${platform.type || platform.platform_class || head.kind}${platform.count > 1 ? ` ×${platform.count}` : ""}`;
    const item = el(
      "li",
      { role: "option", id: `track-${CSS.escape(track.key)}`, "data-key": track.key, "aria-selected": String(track.key === context.selected) },
      el("span", { class: "swatch", style: `background:${context.palette.colour(head.origin)}` }),
      ` ${head.origin} · ${what} · ${formatTime(head.until || head.observed_at, context.tz)}`,
    );
    item.addEventListener("click", () => onPick(track));
    list.append(item);
  }
  let at = Math.max(0, shown.findIndex((track) => track.key === context.selected));
  const focus = () => {
    const item = list.children[at];
    if (!item) return;
    list.setAttribute("aria-activedescendant", item.id);
    for (const other of list.children) other.classList.toggle("active", other === item);
    item.scrollIntoView({ block: "nearest" });
  };
  list.addEventListener("keydown", (event) => {
    const moves = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: shown.length - 1, PageDown: at + 10, PageUp: at - 10 };
    if (event.key in moves) {
      event.preventDefault();
      at = Math.max(0, Math.min(shown.length - 1, moves[event.key]));
      focus();
    } else if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      if (shown[at]) onPick(shown[at]);
    }
  });
  fill(container, el("p", { class: "hint", text: t("tracksHint", { n: tracks.length }) }), list);
  focus();
}

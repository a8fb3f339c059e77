// Observations as tracks: the updates of one source track (``track``), or the radar plots the
// node's fusion tied into one track, drawn as one symbol at the head and a trail behind it.
// Pure functions of the records; the map is not touched here.
import { amplifiedIconName, iconName } from "./symbols.js";
import { endMs } from "./features.js";

export const TRAIL_POINTS = 120;
/** Positions kept in a trail (the latest): a long sortie stays readable. */
const EARTH_M = 6_371_008.8;
const ROLE_MARK = { own: "mark-circle", partner: "mark-diamond", fused: "mark-square" };
const PARTNER_MARKS = ["mark-diamond", "mark-triangle", "mark-hexagon"];

/** The key of the track an observation belongs to. */
export function trackKey(observation, fusedOf) {
  if (observation.track) return `${observation.origin}|${observation.track}`;
  const fused = fusedOf?.get(observation.id);
  if (fused && observation.geometry.type === "Point") return `${observation.origin}|${fused}`;
  return observation.id;
}

/** Map from observation id to the fused item (by its id) whose sources list it. */
export function fusedIndex(items) {
  const index = new Map();
  for (const item of items || []) for (const source of item.sources || []) index.set(source.id, item.id);
  return index;
}

/** Group observations into tracks: key → {key, origin, kind, items (oldest first), head}. */
export function buildTracks(observations, fusedOf) {
  const tracks = new Map();
  for (const observation of observations) {
    if (observation.kind === "area") continue;
    const key = trackKey(observation, fusedOf);
    let track = tracks.get(key);
    if (!track) {
      track = { key, origin: observation.origin, kind: observation.kind, items: [] };
      tracks.set(key, track);
    }
    track.items.push(observation);
  }
  for (const track of tracks.values()) settle(track);
  return tracks;
}

export function settle(track) {
  track.items.sort((a, b) => endMs(a) - endMs(b));
  track.head = track.items.at(-1);
  return track;
}

function lastPosition(geometry) {
  if (geometry.type === "Point") return geometry.coordinates;
  if (geometry.type === "LineString") return geometry.coordinates.at(-1);
  if (geometry.type === "MultiLineString") return geometry.coordinates.at(-1).at(-1);
  return null;
}

/** Positions of the trail, oldest first (a drawn line keeps its own shape). */
export function trailPositions(track) {
  const positions = [];
  for (const item of track.items) {
    const geometry = item.geometry;
    if (geometry.type === "Point") positions.push(geometry.coordinates);
    else if (geometry.type === "LineString") positions.push(...geometry.coordinates);
    else if (geometry.type === "MultiLineString") positions.push(...geometry.coordinates.flat());
  }
  return positions.slice(-TRAIL_POINTS);
}

const radians = (degrees) => (degrees * Math.PI) / 180;

/** Course (degrees true) and speed (m/s) of a track: the head's own, else from its last move. */
export function motion(track) {
  const head = track.head;
  const given = head.kinematics || {};
  let course = given.course_deg ?? null;
  let speed = given.speed_mps ?? null;
  if ((course === null || speed === null) && track.items.length > 1) {
    const before = track.items.at(-2);
    const [lon1, lat1] = lastPosition(before.geometry);
    const [lon2, lat2] = lastPosition(head.geometry);
    const seconds = (endMs(head) - endMs(before)) / 1000;
    const dy = radians(lat2 - lat1);
    const dx = radians(lon2 - lon1) * Math.cos(radians((lat1 + lat2) / 2));
    if (course === null && (dx || dy)) course = (Math.atan2(dx, dy) * 180 / Math.PI + 360) % 360;
    if (speed === null && seconds > 0) speed = (Math.hypot(dx, dy) * EARTH_M) / seconds;
  }
  return { course, speed, altitude: given.altitude_m ?? null };
}

/** The origin's marker shape: own a circle, partners a diamond, triangle or hexagon, fused a
 * square, so origin is told by shape as well as colour. */
export function originMark(origin, palette) {
  const role = palette.role(origin);
  if (role !== "partner") return ROLE_MARK[role];
  return PARTNER_MARKS[palette.partnerIndex(origin) % PARTNER_MARKS.length];
}

export function amplifiers(track, tzMinutes) {
  const head = track.head;
  const platform = head.platform || {};
  const { course, speed, altitude } = motion(track);
  const at = new Date(endMs(head) + tzMinutes * 60_000);
  const hhmm = at.toISOString().slice(11, 16).replace(":", "");
  const zone = tzMinutes === 0 ? "Z" : tzMinutes === 480 ? "H" : tzMinutes === 540 ? "I" : "";
  return {
    type: platform.type || platform.platform_class || "",
    quantity: platform.count > 1 ? String(platform.count) : "",
    altitude: track.kind === "air" && altitude !== null ? `FL${String(Math.round((altitude * 3.28084) / 100)).padStart(3, "0")}` : "",
    speed: track.kind === "sea" && speed !== null ? `${Math.round(speed * 1.943844)} KT` : "",
    time: `${hhmm}${zone}`,
    origin: head.origin,
    course: course === null ? null : Math.round(course),
  };
}

/** The head of a track as a map feature (``id`` for incremental updates). */
export function headFeature(track, symbols, palette, fresh, tzMinutes) {
  const head = track.head;
  const sidc = symbols.sidc(head);
  const at = lastPosition(head.geometry);
  if (!sidc || !at) return null;
  const amp = amplifiers(track, tzMinutes);
  return {
    type: "Feature",
    id: track.key,
    properties: {
      key: track.key,
      id: head.id,
      origin: head.origin,
      kind: head.kind,
      colour: palette.colour(head.origin),
      mark: originMark(head.origin, palette),
      fresh: fresh ? 1 : 0,
      icon: iconName(sidc),
      aicon: amplifiedIconName(sidc, amp),
      updates: track.items.length,
    },
    geometry: { type: "Point", coordinates: at },
  };
}

export function trailFeature(track, palette) {
  const positions = trailPositions(track);
  if (positions.length < 2) return null;
  return {
    type: "Feature",
    id: track.key,
    properties: {
      key: track.key,
      id: track.head.id,
      origin: track.head.origin,
      colour: palette.colour(track.head.origin),
      role: palette.role(track.head.origin),
      shape: "track",
    },
    geometry: { type: "LineString", coordinates: positions },
  };
}

// Areas as map features (polygons, with the closest approaches a source draws), fused sorties,
// the colour of each origin and the extent of a picture. Tracks are in tracks.js. Pure
// functions of the records; no map here.

export const FUSED = "fused";
const OWN_COLOUR = "#1565c0";
const FUSED_COLOUR = "#c2185b";
const PARTNER_COLOURS = ["#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#8d6e63", "#5d4037", "#455a64"];

/** A colour per origin: the own party, each partner in turn, and fused sorties. */
export class Palette {
  constructor(own, partners) {
    this.own = own;
    this.colours = new Map([[own, OWN_COLOUR], [FUSED, FUSED_COLOUR]]);
    for (const party of partners) this.colour(party);
  }

  colour(origin) {
    if (!this.colours.has(origin)) {
      const used = this.colours.size - 2;
      this.colours.set(origin, PARTNER_COLOURS[used % PARTNER_COLOURS.length]);
    }
    return this.colours.get(origin);
  }

  /** 0 for the first partner, 1 for the next … (its marker shape). */
  partnerIndex(origin) {
    return [...this.colours.keys()].filter((o) => o !== this.own && o !== FUSED).indexOf(origin);
  }

  role(origin) {
    if (origin === this.own) return "own";
    if (origin === FUSED) return "fused";
    return "partner";
  }
}

export const startMs = (observation) => Date.parse(observation.observed_at);
export const endMs = (observation) => Date.parse(observation.until || observation.observed_at);

function lastPosition(geometry) {
  if (geometry.type === "Point") return geometry.coordinates;
  if (geometry.type === "LineString") return geometry.coordinates.at(-1);
  if (geometry.type === "MultiLineString") return geometry.coordinates.at(-1).at(-1);
  return null;
}

/** Map features of an area observation and of any closest approach it carries. */
export function areaFeatures(observation, palette) {
  const key = observation.id;
  const properties = { key, id: key, origin: observation.origin, kind: observation.kind, colour: palette.colour(observation.origin) };
  const features = [];
  for (const approach of observation.approaches || []) {
    if (approach.line) features.push({ type: "Feature", properties: { ...properties, shape: "approach" }, geometry: approach.line });
  }
  if (observation.geometry.type === "Polygon") {
    features.push({ type: "Feature", properties: { ...properties, shape: "area" }, geometry: observation.geometry });
  }
  return features;
}

/** A fused sortie from GET /api/fused as features (it carries its own geometry). */
export function fusedFeatures(item, index, palette) {
  const geometry = item.geometry;
  if (!geometry || !geometry.type) return [];
  const key = `fused:${item.id ?? index}`;
  const properties = { key, origin: FUSED, kind: item.kind || "air", colour: palette.colour(FUSED) };
  if (geometry.type === "Polygon") return [{ type: "Feature", properties: { ...properties, shape: "area" }, geometry }];
  const features = [];
  if (geometry.type !== "Point") {
    features.push({ type: "Feature", properties: { ...properties, shape: "track" }, geometry });
  }
  const at = lastPosition(geometry);
  if (at) {
    features.push({
      type: "Feature",
      properties: { ...properties, shape: "fused-point" },
      geometry: { type: "Point", coordinates: at },
    });
  }
  return features;
}

/** The bounding box [[w, s], [e, n]] of observations, or null. */
export function bounds(observations) {
  let west = 180, south = 90, east = -180, north = -90;
  const visit = (coordinates) => {
    if (typeof coordinates[0] === "number") {
      west = Math.min(west, coordinates[0]);
      east = Math.max(east, coordinates[0]);
      south = Math.min(south, coordinates[1]);
      north = Math.max(north, coordinates[1]);
      return;
    }
    for (const inner of coordinates) visit(inner);
  };
  for (const observation of observations) visit(observation.geometry.coordinates);
  return west <= east ? [[west, south], [east, north]] : null;
}

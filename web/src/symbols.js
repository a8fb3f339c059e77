// MIL-STD-2525D symbols (milsymbol) for observations, from the catalogue's SIDC codes, drawn
// into the map's image sprite the first time the map asks for one: the plain symbol, the
// symbol with its text amplifiers (type, count, altitude or speed, time, origin) and direction
// of movement, the origin's marker shape, and the count of a cluster.
import ms from "milsymbol";

const IDENTITY_DIGIT = 3; // 0-based position of the standard identity in a 20-digit SIDC
const FRIEND = "3";
const HOSTILE = "6";
const UNKNOWN = "1";
const AIR_GENERIC = "10010100001100000000";
const SEA_GENERIC = "10013000001300000000";
const AMPLIFIED_KEEP = 4_000;
/** Amplified images kept in the sprite; older ones are dropped (their time changes). */

export class Symbols {
  constructor(catalogue, friendly) {
    this.types = new Map(catalogue.types.map((t) => [t.code, t]));
    this.classes = new Map(catalogue.classes.map((c) => [c.name, c]));
    this.friendly = new Set(friendly);
  }

  /** Catalogue entry of a platform type, or undefined. */
  type(code) {
    return code ? this.types.get(code) : undefined;
  }

  /** The SIDC drawn for an observation: its type's code, else its class's, else air/sea. */
  sidc(observation) {
    if (observation.kind === "area") return null;
    const platform = observation.platform || {};
    const entry = this.type(platform.type);
    const base =
      entry?.sidc ||
      this.classes.get(platform.platform_class)?.sidc ||
      (observation.kind === "sea" ? SEA_GENERIC : AIR_GENERIC);
    const nationality = platform.nationality || entry?.nationality;
    let identity = UNKNOWN;
    if (nationality) identity = this.friendly.has(nationality) ? FRIEND : HOSTILE;
    return base.slice(0, IDENTITY_DIGIT) + identity + base.slice(IDENTITY_DIGIT + 1);
  }
}

export const iconName = (sidc) => `sidc-${sidc}`;

const clean = (text) => String(text ?? "").replaceAll("|", "/");

/** The sprite name of a symbol with its amplifiers (see tracks.js amplifiers()). */
export function amplifiedIconName(sidc, amp) {
  return ["amp", sidc, amp.type, amp.quantity, amp.altitude, amp.speed, amp.time, amp.origin, amp.course ?? ""]
    .map(clean)
    .join("|");
}

function amplifiedSymbol(name) {
  const [, sidc, type, quantity, altitude, speed, time, origin, course] = name.split("|");
  const options = { size: 22, outlineWidth: 3, outlineColor: "#ffffff", infoSize: 45, infoBackground: "rgba(255,255,255,0.75)" };
  if (type) options.type = type;
  if (quantity) options.quantity = quantity;
  if (altitude) options.altitudeDepth = altitude;
  if (speed) options.speed = speed;
  if (time) options.dtg = time;
  if (origin) options.uniqueDesignation = origin;
  if (course !== "") options.direction = Number(course);
  return new ms.Symbol(sidc, options);
}

/** The symbol's canvas padded so that the symbol's anchor is the image's centre. */
function centred(symbol, ratio) {
  const canvas = symbol.asCanvas(ratio);
  const anchor = symbol.getAnchor();
  const size = symbol.getSize();
  const left = anchor.x * ratio;
  const top = anchor.y * ratio;
  const half = Math.ceil(Math.max(left, canvas.width - left, top, canvas.height - top));
  const out = document.createElement("canvas");
  out.width = out.height = 2 * half;
  out.getContext("2d").drawImage(canvas, half - left, half - top);
  void size;
  return out.getContext("2d").getImageData(0, 0, out.width, out.height);
}

function drawMark(shape, colour, ratio) {
  const size = Math.round(34 * ratio);
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = size;
  const c = canvas.getContext("2d");
  const mid = size / 2;
  const r = size / 2 - 3 * ratio;
  c.beginPath();
  if (shape === "circle") c.arc(mid, mid, r, 0, 2 * Math.PI);
  else if (shape === "square") c.rect(mid - r * 0.85, mid - r * 0.85, 1.7 * r, 1.7 * r);
  else if (shape === "diamond") {
    c.moveTo(mid, mid - r); c.lineTo(mid + r, mid); c.lineTo(mid, mid + r); c.lineTo(mid - r, mid);
  } else if (shape === "triangle") {
    c.moveTo(mid, mid - r); c.lineTo(mid + r, mid + r * 0.8); c.lineTo(mid - r, mid + r * 0.8);
  } else {
    for (let n = 0; n < 6; n += 1) {
      const a = (Math.PI / 3) * n;
      c[n ? "lineTo" : "moveTo"](mid + r * Math.cos(a), mid + r * Math.sin(a));
    }
  }
  c.closePath();
  c.fillStyle = `${colour}33`;
  c.fill();
  c.lineWidth = 2.5 * ratio;
  c.strokeStyle = colour;
  c.stroke();
  return c.getImageData(0, 0, size, size);
}

function drawCluster(count, colour, ratio) {
  const radius = (count < 10 ? 13 : count < 100 ? 16 : count < 1000 ? 19 : 22) * ratio;
  const size = Math.ceil(2 * radius + 4 * ratio);
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = size;
  const c = canvas.getContext("2d");
  c.beginPath();
  c.arc(size / 2, size / 2, radius, 0, 2 * Math.PI);
  c.fillStyle = "rgba(255,255,255,0.92)";
  c.fill();
  c.lineWidth = 3 * ratio;
  c.strokeStyle = colour;
  c.stroke();
  c.fillStyle = "#17212b";
  c.font = `bold ${Math.round(12 * ratio)}px system-ui, sans-serif`;
  c.textAlign = "center";
  c.textBaseline = "middle";
  c.fillText(count >= 1000 ? `${(count / 1000).toFixed(1)}k` : String(count), size / 2, size / 2 + ratio);
  return c.getImageData(0, 0, size, size);
}

/** Draw each image the first time the map needs it. */
export function provideIcons(map) {
  const ratio = Math.max(1, Math.min(2, window.devicePixelRatio || 1));
  const amplified = [];
  map.setMissingStyleImageResolver((id) => {
    if (map.hasImage(id)) return;
    if (id.startsWith("sidc-")) {
      const symbol = new ms.Symbol(id.slice(5), { size: 22, outlineWidth: 3, outlineColor: "#ffffff" });
      map.addImage(id, centred(symbol, ratio), { pixelRatio: ratio });
    } else if (id.startsWith("amp|")) {
      map.addImage(id, centred(amplifiedSymbol(id), ratio), { pixelRatio: ratio });
      amplified.push(id);
      while (amplified.length > AMPLIFIED_KEEP) {
        const old = amplified.shift();
        if (map.hasImage(old)) map.removeImage(old);
      }
    } else if (id.startsWith("mark-")) {
      const [, shape, colour] = id.split("-");
      map.addImage(id, drawMark(shape, colour, ratio), { pixelRatio: ratio });
    } else if (id.startsWith("cluster|")) {
      const [, count, colour] = id.split("|");
      map.addImage(id, drawCluster(Number(count), colour, ratio), { pixelRatio: ratio });
    }
  });
  map.addImage("arrow", arrowImage(), { sdf: true, pixelRatio: 1 });
}

function arrowImage() {
  const size = 18;
  const canvas = document.createElement("canvas");
  canvas.width = size;
  canvas.height = size;
  const context = canvas.getContext("2d");
  context.fillStyle = "#000";
  context.beginPath();
  context.moveTo(3, 3);
  context.lineTo(size - 2, size / 2);
  context.lineTo(3, size - 3);
  context.lineTo(7, size / 2);
  context.closePath();
  context.fill();
  return context.getImageData(0, 0, size, size);
}

/** A small inline SVG of a symbol, for the detail panel and the legend. */
export function symbolSvg(sidc, size = 28) {
  return new ms.Symbol(sidc, { size }).asSVG();
}

/** A marker shape as an inline SVG, for the legend (the same shapes as on the map). */
export function markSvg(shape, colour) {
  const paths = {
    circle: '<circle cx="9" cy="9" r="7"/>',
    square: '<rect x="3" y="3" width="12" height="12"/>',
    diamond: '<polygon points="9,1 17,9 9,17 1,9"/>',
    triangle: '<polygon points="9,2 17,15 1,15"/>',
    hexagon: '<polygon points="16,9 12.5,15 5.5,15 2,9 5.5,3 12.5,3"/>',
  };
  return `<svg xmlns="http://www.w3.org/2000/svg" width="18" height="18" viewBox="0 0 18 18" fill="${colour}33" stroke="${colour}" stroke-width="2">${paths[shape] || paths.circle}</svg>`;
}

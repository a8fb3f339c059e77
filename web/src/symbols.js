// MIL-STD-2525D symbols (milsymbol) for observations, from the catalogue's SIDC codes, drawn
// once per code into the map's image sprite when the map first asks for them.
import ms from "milsymbol";

const IDENTITY_DIGIT = 3; // 0-based position of the standard identity in a 20-digit SIDC
const FRIEND = "3";
const HOSTILE = "6";
const UNKNOWN = "1";
const AIR_GENERIC = "10010100001100000000";
const SEA_GENERIC = "10013000001300000000";

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

/** Draw each symbol image the first time the map needs it. */
export function provideIcons(map) {
  const ratio = Math.max(1, Math.min(2, window.devicePixelRatio || 1));
  map.setMissingStyleImageResolver((id) => {
    if (map.hasImage(id) || !id.startsWith("sidc-")) return;
    const symbol = new ms.Symbol(id.slice(5), { size: 22, outlineWidth: 3, outlineColor: "#ffffff" });
    const canvas = symbol.asCanvas(ratio);
    const image = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
    map.addImage(id, image, { pixelRatio: ratio });
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

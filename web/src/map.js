// The map: Natural Earth basemap served by the node, a graticule, the reference zones, tracks
// (a symbol at each head, a trail behind it, clustered at low zoom), areas and fused sorties.
// No tiles, fonts or sprites from elsewhere: symbols, markers and cluster counts are drawn
// into the sprite by symbols.js; words live in the panels.
import * as maplibregl from "maplibre-gl";
import { provideIcons } from "./symbols.js";

maplibregl.setWorkerUrl(new URL("/assets/maplibre-gl-worker.mjs", window.location.href).href);

const EMPTY = { type: "FeatureCollection", features: [] };
const SEA = "#dfe9f3";
const LAND = "#f4f1ea";
const INCIDENT = "#d84315"; // search and rescue: datum and search areas
export const CLUSTER_MAX_ZOOM = 6;
export const AMPLIFIERS_FROM_ZOOM = 7;

export const TRACK_LAYERS = ["trails", "trail-direction", "head-marks", "head-symbols", "clusters"];
export const OBSERVATION_LAYERS = ["obs-areas", "obs-approaches", ...TRACK_LAYERS];
export const CLICKABLE_LAYERS = ["obs-areas", "trails", "head-symbols", "head-marks", "clusters"];
export const FUSED_LAYERS = ["fused-areas", "fused-tracks", "fused-points"];
export const ZONE_LAYERS = {
  adiz: ["zones-adiz-fill", "zones-adiz"],
  median: ["zones-median"],
  gates: ["zones-gates"],
  grid: ["grid-10", "grid-5", "grid-1", "grid-30m"],
  incidents: ["incident-areas", "incident-area-lines", "incident-datum"],
};
/** What a message in the Messages tab is about, drawn when the officer asks to see it. */
export const ATTACHED_LAYERS = ["attached-areas", "attached-points"];

/** Lines of longitude and latitude every ``step`` degrees over the region watched. */
function graticule() {
  const features = [];
  const steps = [[10, "10"], [5, "5"], [1, "1"], [0.5, "30m"]];
  for (const [step, name] of steps) {
    for (let lon = 90; lon <= 160; lon += step) {
      const coarser = steps.find(([s]) => s > step && Number.isInteger(lon / s));
      if (!coarser) features.push({ type: "Feature", properties: { step: name }, geometry: { type: "LineString", coordinates: [[lon, -10], [lon, 60]] } });
    }
    for (let lat = -10; lat <= 60; lat += step) {
      const coarser = steps.find(([s]) => s > step && Number.isInteger(lat / s));
      if (!coarser) features.push({ type: "Feature", properties: { step: name }, geometry: { type: "LineString", coordinates: [[90, lat], [160, lat]] } });
    }
  }
  return { type: "FeatureCollection", features };
}

function gridLayer(name, minzoom, width) {
  return {
    id: `grid-${name}`,
    type: "line",
    source: "graticule",
    minzoom,
    filter: ["==", ["get", "step"], name],
    paint: { "line-color": "#8da2b5", "line-width": width, "line-opacity": 0.55 },
  };
}

export function createMap(container, basemap, zones, own) {
  const clusterColour = ["case",
    ["==", ["get", "own"], ["get", "point_count"]], own.colour,
    ["==", ["get", "own"], 0], own.partnerColour,
    "#455a64"];
  const map = new maplibregl.Map({
    container,
    center: [122.5, 24.5],
    zoom: 4.6,
    attributionControl: false,
    fadeDuration: 0,
    style: {
      version: 8,
      sources: {
        basemap: { type: "geojson", data: basemap, attribution: basemap.attribution, maxzoom: 10, tolerance: 0.5 },
        graticule: { type: "geojson", data: graticule() },
        zones: { type: "geojson", data: zones },
        areas: { type: "geojson", data: EMPTY },
        trails: { type: "geojson", data: EMPTY, promoteId: "key" },
        heads: {
          type: "geojson",
          data: EMPTY,
          promoteId: "key",
          cluster: true,
          clusterMaxZoom: CLUSTER_MAX_ZOOM,
          clusterRadius: 36,
          clusterMinPoints: 3,
          clusterProperties: { own: ["+", ["case", ["==", ["get", "origin"], own.party], 1, 0]] },
        },
        fused: { type: "geojson", data: EMPTY },
        incidents: { type: "geojson", data: EMPTY },
        attached: { type: "geojson", data: EMPTY },
      },
      layers: [
        { id: "sea", type: "background", paint: { "background-color": SEA } },
        gridLayer("10", 0, 0.8),
        gridLayer("5", 3, 0.6),
        gridLayer("1", 5.5, 0.5),
        gridLayer("30m", 8, 0.4),
        {
          id: "land",
          type: "fill",
          source: "basemap",
          filter: ["==", ["get", "layer"], "land"],
          paint: { "fill-color": LAND, "fill-outline-color": "#9aa5b1" },
        },
        {
          id: "borders",
          type: "line",
          source: "basemap",
          filter: ["==", ["get", "layer"], "border"],
          paint: { "line-color": "#9aa5b1", "line-width": 0.8, "line-dasharray": [3, 2] },
        },
        {
          id: "zones-adiz-fill",
          type: "fill",
          source: "zones",
          filter: ["in", ["get", "kind"], ["literal", ["adiz", "adiz_sector"]]],
          paint: { "fill-color": "#ffb300", "fill-opacity": 0.05 },
        },
        {
          id: "zones-adiz",
          type: "line",
          source: "zones",
          filter: ["in", ["get", "kind"], ["literal", ["adiz", "adiz_sector"]]],
          paint: { "line-color": "#e65100", "line-width": 1.4, "line-dasharray": [4, 3] },
        },
        {
          id: "zones-median",
          type: "line",
          source: "zones",
          filter: ["==", ["get", "kind"], "median_line"],
          paint: { "line-color": "#6d4c41", "line-width": 1.8, "line-dasharray": [6, 2, 1, 2] },
        },
        {
          id: "zones-gates",
          type: "line",
          source: "zones",
          filter: ["==", ["get", "kind"], "gate"],
          paint: { "line-color": "#00695c", "line-width": 3, "line-opacity": 0.8 },
        },
        {
          id: "obs-areas",
          type: "fill",
          source: "areas",
          filter: ["==", ["get", "shape"], "area"],
          paint: { "fill-color": ["get", "colour"], "fill-opacity": 0.18, "fill-outline-color": ["get", "colour"] },
        },
        {
          id: "obs-approaches",
          type: "line",
          source: "areas",
          filter: ["==", ["get", "shape"], "approach"],
          paint: { "line-color": ["get", "colour"], "line-width": 1.2, "line-dasharray": [2, 2] },
        },
        {
          id: "trail-selected",
          type: "line",
          source: "trails",
          filter: ["==", ["get", "key"], ""],
          layout: { "line-cap": "round", "line-join": "round" },
          paint: { "line-color": "#ffd600", "line-width": 8, "line-opacity": 0.7 },
        },
        {
          id: "trails",
          type: "line",
          source: "trails",
          layout: { "line-cap": "round", "line-join": "round" },
          paint: { "line-color": ["get", "colour"], "line-width": 2, "line-opacity": 0.8 },
        },
        {
          // partners' trails dashed as well as coloured
          id: "trails-partner",
          type: "line",
          source: "trails",
          filter: ["!=", ["get", "role"], "own"],
          paint: { "line-color": "#ffffff", "line-width": 1, "line-dasharray": [2, 3] },
        },
        {
          id: "trail-direction",
          type: "symbol",
          source: "trails",
          minzoom: 5,
          layout: {
            "symbol-placement": "line",
            "symbol-spacing": 90,
            "icon-image": "arrow",
            "icon-size": 0.55,
            "icon-allow-overlap": true,
            "icon-ignore-placement": true,
            "icon-rotation-alignment": "map",
          },
          paint: { "icon-color": ["get", "colour"] },
        },
        {
          id: "head-selected",
          type: "circle",
          source: "heads",
          filter: ["==", ["get", "key"], ""],
          paint: { "circle-radius": 22, "circle-color": "rgba(255,214,0,0.35)", "circle-stroke-color": "#ffab00", "circle-stroke-width": 3 },
        },
        {
          id: "head-fresh",
          type: "circle",
          source: "heads",
          filter: ["all", ["!", ["has", "point_count"]], ["==", ["get", "fresh"], 1]],
          paint: { "circle-radius": 20, "circle-color": "rgba(0,0,0,0)", "circle-stroke-color": ["get", "colour"], "circle-stroke-width": 2.5 },
        },
        {
          id: "head-marks",
          type: "symbol",
          source: "heads",
          filter: ["!", ["has", "point_count"]],
          layout: {
            "icon-image": ["concat", ["get", "mark"], "-", ["get", "colour"]],
            "icon-allow-overlap": true,
            "icon-ignore-placement": true,
          },
        },
        {
          id: "head-symbols",
          type: "symbol",
          source: "heads",
          filter: ["!", ["has", "point_count"]],
          layout: {
            "icon-image": ["step", ["zoom"], ["get", "icon"], AMPLIFIERS_FROM_ZOOM, ["get", "aicon"]],
            "icon-allow-overlap": true,
            "icon-ignore-placement": true,
            "symbol-sort-key": ["get", "updates"],
          },
        },
        {
          id: "clusters",
          type: "symbol",
          source: "heads",
          filter: ["has", "point_count"],
          layout: {
            "icon-image": ["concat", "cluster|", ["to-string", ["get", "point_count"]], "|", clusterColour],
            "icon-allow-overlap": true,
            "icon-ignore-placement": true,
          },
        },
        {
          id: "incident-areas",
          type: "fill",
          source: "incidents",
          filter: ["==", ["get", "part"], "search-area"],
          paint: { "fill-color": INCIDENT, "fill-opacity": 0.12 },
        },
        {
          id: "incident-area-lines",
          type: "line",
          source: "incidents",
          filter: ["==", ["get", "part"], "search-area"],
          paint: { "line-color": INCIDENT, "line-width": 2, "line-dasharray": [4, 2] },
        },
        {
          id: "incident-datum",
          type: "circle",
          source: "incidents",
          filter: ["==", ["get", "part"], "datum"],
          paint: {
            "circle-radius": 9,
            "circle-color": ["case", ["==", ["get", "status"], "closed"], "#9e9e9e", INCIDENT],
            "circle-stroke-color": "#ffffff",
            "circle-stroke-width": 3,
          },
        },
        {
          id: "attached-areas",
          type: "line",
          source: "attached",
          filter: ["==", ["geometry-type"], "Polygon"],
          paint: { "line-color": "#ffab00", "line-width": 4 },
        },
        {
          id: "attached-points",
          type: "circle",
          source: "attached",
          filter: ["!=", ["geometry-type"], "Polygon"],
          paint: { "circle-radius": 16, "circle-color": "rgba(255,214,0,0.35)", "circle-stroke-color": "#ffab00", "circle-stroke-width": 3 },
        },
        {
          id: "fused-areas",
          type: "fill",
          source: "fused",
          filter: ["==", ["get", "shape"], "area"],
          paint: { "fill-color": ["get", "colour"], "fill-opacity": 0.2 },
        },
        {
          id: "fused-tracks",
          type: "line",
          source: "fused",
          filter: ["==", ["get", "shape"], "track"],
          paint: { "line-color": ["get", "colour"], "line-width": 3, "line-dasharray": [2, 1] },
        },
        {
          id: "fused-points",
          type: "circle",
          source: "fused",
          filter: ["==", ["get", "shape"], "fused-point"],
          paint: { "circle-radius": 12, "circle-color": "rgba(0,0,0,0)", "circle-stroke-color": ["get", "colour"], "circle-stroke-width": 3 },
        },
      ],
    },
  });
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
  map.addControl(new maplibregl.ScaleControl({ unit: "nautical" }), "bottom-right");
  map.addControl(new maplibregl.AttributionControl({ compact: true }), "bottom-right");
  map.once("load", () => provideIcons(map));
  return map;
}

export function setVisibility(map, layers, visible) {
  for (const id of layers) if (map.getLayer(id)) map.setLayoutProperty(id, "visibility", visible ? "visible" : "none");
}

/** Highlight one track or area (``key``), or none. */
export function select(map, key) {
  map.setFilter("head-selected", ["all", ["!", ["has", "point_count"]], ["==", ["get", "key"], key || ""]]);
  map.setFilter("trail-selected", ["==", ["get", "key"], key || ""]);
}

/** Distinct observation keys drawn in the viewport now (what the watch officer can see). */
export function renderedKeys(map, layers = ["obs-areas", "head-symbols"]) {
  const keys = new Set();
  for (const feature of map.queryRenderedFeatures({ layers })) keys.add(feature.properties.key);
  return keys;
}

// The map: Natural Earth basemap served by the node, the reference zones, observations and fused
// sorties. No tiles, fonts or sprites from elsewhere: labels live in the panels, not on the map.
import * as maplibregl from "maplibre-gl";
import { provideIcons } from "./symbols.js";

maplibregl.setWorkerUrl(new URL("/assets/maplibre-gl-worker.mjs", window.location.href).href);

const EMPTY = { type: "FeatureCollection", features: [] };
const SEA = "#dfe9f3";
const LAND = "#f4f1ea";

export const OBSERVATION_LAYERS = ["obs-areas", "obs-tracks", "obs-halo", "obs-symbols"];
export const FUSED_LAYERS = ["fused-areas", "fused-tracks", "fused-points"];
export const ZONE_LAYERS = {
  adiz: ["zones-adiz-fill", "zones-adiz"],
  median: ["zones-median"],
  gates: ["zones-gates"],
};

export function createMap(container, basemap, zones) {
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
        zones: { type: "geojson", data: zones },
        observations: { type: "geojson", data: EMPTY },
        fused: { type: "geojson", data: EMPTY },
      },
      layers: [
        { id: "sea", type: "background", paint: { "background-color": SEA } },
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
          source: "observations",
          filter: ["==", ["get", "shape"], "area"],
          paint: {
            "fill-color": ["get", "colour"],
            "fill-opacity": 0.18,
            "fill-outline-color": ["get", "colour"],
          },
        },
        {
          id: "obs-approaches",
          type: "line",
          source: "observations",
          filter: ["==", ["get", "shape"], "approach"],
          paint: { "line-color": ["get", "colour"], "line-width": 1.2, "line-dasharray": [2, 2] },
        },
        {
          id: "obs-tracks",
          type: "line",
          source: "observations",
          filter: ["==", ["get", "shape"], "track"],
          layout: { "line-cap": "round", "line-join": "round" },
          paint: { "line-color": ["get", "colour"], "line-width": 2.2, "line-opacity": 0.85 },
        },
        {
          id: "obs-direction",
          type: "symbol",
          source: "observations",
          filter: ["==", ["get", "shape"], "track"],
          layout: {
            "symbol-placement": "line",
            "symbol-spacing": 80,
            "icon-image": "arrow",
            "icon-size": 0.6,
            "icon-allow-overlap": true,
            "icon-ignore-placement": true,
            "icon-rotation-alignment": "map",
          },
          paint: { "icon-color": ["get", "colour"] },
        },
        {
          id: "obs-halo",
          type: "circle",
          source: "observations",
          filter: ["==", ["get", "shape"], "symbol"],
          paint: {
            "circle-radius": ["case", ["==", ["get", "fresh"], 1], 20, 14],
            "circle-color": ["get", "colour"],
            "circle-opacity": 0.25,
            "circle-stroke-color": ["get", "colour"],
            "circle-stroke-width": ["case", ["==", ["get", "fresh"], 1], 3, 1.5],
          },
        },
        {
          id: "obs-symbols",
          type: "symbol",
          source: "observations",
          filter: ["==", ["get", "shape"], "symbol"],
          layout: {
            "icon-image": ["get", "icon"],
            "icon-allow-overlap": true,
            "icon-ignore-placement": true,
          },
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
          paint: {
            "circle-radius": 9,
            "circle-color": "rgba(0,0,0,0)",
            "circle-stroke-color": ["get", "colour"],
            "circle-stroke-width": 3,
          },
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
  for (const id of layers) map.setLayoutProperty(id, "visibility", visible ? "visible" : "none");
}

/** Distinct observation keys drawn in the viewport now (what the watch officer can see). */
export function renderedKeys(map, layers = OBSERVATION_LAYERS) {
  const keys = new Set();
  for (const feature of map.queryRenderedFeatures({ layers })) keys.add(feature.properties.key);
  return keys;
}

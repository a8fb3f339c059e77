// Builds the picture into src/kuroshio/web/dist: the page, one script and one style sheet
// (esbuild), MapLibre's worker, and the basemap as GeoJSON from Natural Earth (world-atlas).
// Nothing the page needs at run time comes from anywhere but the node serving it.
import * as esbuild from "esbuild";
import { feature, mesh } from "topojson-client";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.resolve(here, "..", "src", "kuroshio", "web", "dist");
const assets = path.join(dist, "assets");
const modules = path.join(here, "node_modules");

// Natural Earth at 1:10m for the island chains the exchange watches, 1:50m for the rest.
const DETAILED = new Set(["Taiwan", "Japan", "Philippines"]);
const DECIMALS = 1e4; // about 10 m: finer than the 1:10m data itself

function topology(scale) {
  const file = path.join(modules, "world-atlas", `countries-${scale}.json`);
  return JSON.parse(fs.readFileSync(file, "utf8"));
}

function rounded(geometry) {
  return JSON.parse(
    JSON.stringify(geometry, (_, value) =>
      typeof value === "number" ? Math.round(value * DECIMALS) / DECIMALS : value,
    ),
  );
}

function basemap() {
  const fine = topology("10m");
  const coarse = topology("50m");
  const countries = [
    ...feature(fine, fine.objects.countries).features.filter((f) => DETAILED.has(f.properties.name)),
    ...feature(coarse, coarse.objects.countries).features.filter(
      (f) => !DETAILED.has(f.properties.name),
    ),
  ].map((f) => ({
    type: "Feature",
    properties: { name: f.properties.name, layer: "land" },
    geometry: rounded(f.geometry),
  }));
  const borders = {
    type: "Feature",
    properties: { layer: "border" },
    geometry: rounded(mesh(coarse, coarse.objects.countries, (a, b) => a !== b)),
  };
  return {
    type: "FeatureCollection",
    attribution: "Natural Earth (public domain), via world-atlas",
    features: [...countries, borders],
  };
}

fs.rmSync(dist, { recursive: true, force: true });
fs.mkdirSync(assets, { recursive: true });

await esbuild.build({
  entryPoints: { app: path.join(here, "src", "main.js") },
  bundle: true,
  format: "esm",
  target: ["es2022"],
  minify: true,
  sourcemap: false,
  legalComments: "linked",
  outdir: assets,
  logLevel: "warning",
});

fs.copyFileSync(
  path.join(modules, "maplibre-gl", "dist", "maplibre-gl-worker.mjs"),
  path.join(assets, "maplibre-gl-worker.mjs"),
);
fs.writeFileSync(path.join(assets, "basemap.json"), JSON.stringify(basemap()));
fs.copyFileSync(path.join(here, "src", "index.html"), path.join(dist, "index.html"));

const sizes = fs
  .readdirSync(assets)
  .map((name) => `${name} ${(fs.statSync(path.join(assets, name)).size / 1024).toFixed(0)} KiB`);
console.log(`built ${path.relative(process.cwd(), dist)}: index.html, ${sizes.join(", ")}`);

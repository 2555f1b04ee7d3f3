// Bundles the UI into dist/ for Tauri to embed: one script, one stylesheet,
// no CDN, works offline.
import { build } from "esbuild";
import { cpSync, mkdirSync } from "node:fs";

mkdirSync("dist", { recursive: true });
cpSync("static", "dist", { recursive: true });
cpSync("../icons/64x64.png", "dist/icon.png");
await build({
  entryPoints: ["src/main.ts"],
  bundle: true,
  format: "esm",
  target: "es2021",
  outfile: "dist/app.js",
  sourcemap: false,
  logLevel: "warning",
});

// The widget's shipped script: src/reclift.js minified into the extension's assets. Shopify's theme check refuses an
// app block script over 10,000 bytes (AssetSizeAppBlockJavaScript); the source keeps its comments and names.
//   node build.mjs            writes reclift-recommendations/assets/reclift.js (make widget)
//   node build.mjs --stdout   prints the build (tests/template/test_theme_check.py compares it with the asset)
import { buildSync } from "esbuild";
import { fileURLToPath } from "node:url";

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const ASSET = here("reclift-recommendations/assets/reclift.js");

const [output] = buildSync({
  entryPoints: [here("src/reclift.js")],
  outfile: ASSET,
  write: false,
  minify: true,
  // Storefront browsers: what Shopify's themes support (the source is written in ES5 anyway).
  target: "es2017",
  charset: "utf8",
  legalComments: "none",
  banner: { js: "/* reclift storefront widget, built from extensions/src/reclift.js by `make widget`: edit that file. */" },
  logLevel: "warning",
}).outputFiles;

if (process.argv.includes("--stdout")) {
  process.stdout.write(output.contents);
} else {
  const { writeFileSync } = await import("node:fs");
  writeFileSync(ASSET, output.contents);
  console.log(`${ASSET}: ${output.contents.length} bytes`);
}

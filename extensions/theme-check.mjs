// Shopify's theme check over a theme app extension (the checks `shopify app deploy` runs, from the pinned
// @shopify/theme-check-node): prints every offense as JSON and exits 1 when there is one, whatever its severity.
//   node theme-check.mjs reclift-recommendations
// It runs on the Liquid docs its version ships, never downloaded ones: the same result on every machine, offline too.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(process.argv[2] || "reclift-recommendations");
const cache = mkdtempSync(path.join(tmpdir(), "theme-check-"));
process.env.XDG_CACHE_HOME = cache; // no docs cached by an earlier run or another tool
process.env.SHOPIFY_TLD_ROOT = path.join(cache, "none"); // nothing to "download" there: the bundled docs are used
try {
  const { themeCheckRun } = await import("@shopify/theme-check-node");
  const { offenses } = await themeCheckRun(root, undefined, () => {});
  const found = offenses.map((offense) => ({
    check: offense.check,
    severity: offense.severity,
    file: path.relative(root, fileURLToPath(offense.uri)),
    line: offense.start.line + 1,
    message: offense.message,
  }));
  console.log(JSON.stringify(found, null, 2));
  process.exitCode = found.length ? 1 : 0;
} finally {
  rmSync(cache, { recursive: true, force: true });
}

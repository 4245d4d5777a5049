// Bundles the dashboard into the package's static folder (committed, so `make serve`
// needs no npm). Run with `make web` or `npm run build` in web/.
import { build } from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "src", "cryptopulse", "web", "static");

await rm(out, { recursive: true, force: true });
await mkdir(join(out, "assets"), { recursive: true });
await build({
  entryPoints: [join(here, "src", "main.js"), join(here, "src", "app.css")],
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2020"],
  outdir: join(out, "assets"),
  entryNames: "[name]",
  legalComments: "linked",
  logLevel: "info",
});
await copyFile(join(here, "src", "index.html"), join(out, "index.html"));

// Builds the agent-workspace app into dist/: the two bundles (the app, the sign-in popup's callback)
// and the static pages. `connect-events app serve --assets dist` and the agent-app Lambda serve it.
import { build } from "esbuild";
import { cpSync, mkdirSync, rmSync } from "node:fs";

const out = new URL("./dist/", import.meta.url);
rmSync(out, { recursive: true, force: true });
mkdirSync(out);
await build({
  entryPoints: ["src/app.ts", "src/callback.ts"],
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2020",
  outdir: "dist",
  legalComments: "linked",
  logLevel: "warning",
});
cpSync(new URL("./static/", import.meta.url), out, { recursive: true });

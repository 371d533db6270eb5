import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { defineConfig, type Plugin } from "vite";
import { svelte } from "@sveltejs/vite-plugin-svelte";

// Swagger UI's files, copied from the npm package swagger-ui-dist into the build's swagger/ folder, where
// the server's /docs (slicewise.server.docs) loads them: the API docs then work without a network.
const SWAGGER_FILES = ["swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"];

function swaggerUi(): Plugin {
  const dist = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
  return {
    name: "slicewise-swagger-ui",
    apply: "build",
    generateBundle() {
      for (const f of SWAGGER_FILES) {
        this.emitFile({ type: "asset", fileName: `swagger/${f}`, source: readFileSync(join(dist, f)) });
      }
    },
  };
}

// `npm run build` writes the app into the Python package, where FastAPI serves it.
export default defineConfig({
  plugins: [svelte(), swaggerUi()],
  build: { outDir: "../src/slicewise/server/static", emptyOutDir: true, chunkSizeWarningLimit: 1200 },
  server: { proxy: { "/api": "http://127.0.0.1:8765" } },
});

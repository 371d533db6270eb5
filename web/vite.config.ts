import { defineConfig } from "vite";
import { svelte } from "@sveltejs/vite-plugin-svelte";

// `npm run build` writes the app into the Python package, where FastAPI serves it.
export default defineConfig({
  plugins: [svelte()],
  build: { outDir: "../src/slicewise/server/static", emptyOutDir: true, chunkSizeWarningLimit: 1200 },
  server: { proxy: { "/api": "http://127.0.0.1:8765" } },
});

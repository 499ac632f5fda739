import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";
import tailwindcss from "@tailwindcss/vite";

export default defineConfig({
  plugins: [react(), tailwindcss()],
  // `npm run dev`: the UI with hot reload, its API calls passed to a running gateway (the
  // same origin as in production, so the refresh cookie works).
  server: {
    proxy: {
      "^/parley\\.": { target: process.env.PARLEY_URL ?? "http://127.0.0.1:8080" },
    },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // The gateway's CSP allows scripts only from files: no inline module preload polyfill.
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 2000,
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
  },
});

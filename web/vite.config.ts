import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { brotliCompress, constants as zlib, gzip } from "node:zlib";
import { promisify } from "node:util";
import { defineConfig, type Plugin } from "vitest/config";
import react from "@vitejs/plugin-react";
import tailwindcss from "@tailwindcss/vite";
import hljs from "highlight.js";

/** Every highlight.js alias to its language (`py` → `python`), so a code fence's language maps
 * to the one grammar chunk to load without loading any grammar first. */
function highlightAliases(): Record<string, string> {
  const aliases: Record<string, string> = {};
  for (const name of hljs.listLanguages()) {
    for (const alias of hljs.getLanguage(name)?.aliases ?? []) aliases[alias.toLowerCase()] = name;
  }
  return aliases;
}

const COMPRESSIBLE = /\.(?:html|js|mjs|css|svg|json|txt|xml|webmanifest|wasm|map)$/;

/** After the build: `x.br` (brotli, best) and `x.gz` (gzip, best) next to every compressible
 * file they make smaller, so the gateway sends them as they are and compresses nothing per
 * request (gateway/src/web_ui.rs). */
function precompress(outDir: string): Plugin {
  const br = promisify(brotliCompress);
  const gz = promisify(gzip);
  async function* files(dir: string): AsyncGenerator<string> {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) yield* files(path);
      else if (COMPRESSIBLE.test(entry.name)) yield path;
    }
  }
  return {
    name: "parley:precompress",
    apply: "build",
    async closeBundle() {
      const jobs: Promise<void>[] = [];
      for await (const path of files(outDir)) {
        jobs.push(
          (async () => {
            const content = await readFile(path);
            const { size } = await stat(path);
            const [brotli, gzipped] = await Promise.all([
              br(content, {
                params: {
                  [zlib.BROTLI_PARAM_QUALITY]: zlib.BROTLI_MAX_QUALITY,
                  [zlib.BROTLI_PARAM_SIZE_HINT]: size,
                  [zlib.BROTLI_PARAM_MODE]: zlib.BROTLI_MODE_TEXT,
                },
              }),
              gz(content, { level: zlib.Z_BEST_COMPRESSION }),
            ]);
            if (brotli.length < size) await writeFile(`${path}.br`, brotli);
            if (gzipped.length < size) await writeFile(`${path}.gz`, gzipped);
          })(),
        );
      }
      await Promise.all(jobs);
    },
  };
}

export default defineConfig({
  plugins: [react(), tailwindcss(), precompress("dist")],
  define: {
    __HLJS_ALIASES__: JSON.stringify(highlightAliases()),
  },
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
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
  },
});

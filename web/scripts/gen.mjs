// Generates the protobuf-es clients from ../proto into src/gen, so proto/ stays the single
// source. npm 11 skips @bufbuild/buf's install script, so the platform binary is called by
// its path rather than through the `buf` wrapper.
import { execFileSync } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const web = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);

function bufBinary() {
  const platform = `${process.platform === "win32" ? "win32" : process.platform}-${process.arch === "x64" ? "x64" : process.arch}`;
  const exe = process.platform === "win32" ? "buf.exe" : "buf";
  const pkg = `@bufbuild/buf-${platform}`;
  try {
    return join(dirname(require.resolve(`${pkg}/package.json`)), "bin", exe);
  } catch {
    throw new Error(`${pkg} is not installed: run npm ci in web/`);
  }
}

const out = join(web, "src", "gen");
rmSync(out, { recursive: true, force: true });
const plugin = join(web, "node_modules", ".bin", process.platform === "win32" ? "protoc-gen-es.cmd" : "protoc-gen-es");
if (!existsSync(plugin)) throw new Error("protoc-gen-es is not installed: run npm ci in web/");
const template = JSON.stringify({
  version: "v2",
  plugins: [{ local: plugin, out, opt: ["target=ts", "import_extension=none"] }],
});
execFileSync(
  bufBinary(),
  [
    "generate",
    join(web, "..", "proto"),
    "--template",
    template,
    "--path",
    join(web, "..", "proto", "parley", "user"),
    "--path",
    join(web, "..", "proto", "parley", "chat"),
    // Service-to-service only (the gateway never routes it): no browser client.
    "--exclude-path",
    join(web, "..", "proto", "parley", "chat", "internal"),
  ],
  {
    stdio: "inherit",
    cwd: web,
  },
);

// Starts the real stack for the browser tests: the fake OpenAI-compatible provider and the
// all-in-one `parley` binary (user, chat and llm services and the gateway serving web/dist),
// each on a random port, with a fresh data directory. Their output is kept: the password
// reset code is read from the log, as an operator without SMTP would.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

const web = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const repo = resolve(web, "..");

export const parleyBin = process.env.PARLEY_BIN ?? join(repo, "target", "debug", "parley");
export const fakeOpenAiBin = process.env.FAKE_OPENAI_BIN ?? join(repo, "target", "debug", "fake-openai");
/** The built UI the stack serves (another build, to compare: `WEB_DIST`). */
export const webDist = process.env.WEB_DIST ?? join(web, "dist");

interface Started {
  child: ChildProcess;
  lines: string[];
  match: RegExpMatchArray;
}

function start(bin: string, args: string[], ready: RegExp, env: NodeJS.ProcessEnv = {}): Promise<Started> {
  if (!existsSync(bin)) {
    throw new Error(
      `${bin} does not exist: build it (cargo build -p parley --bin parley -p parley-testkit --bin fake-openai) or set PARLEY_BIN / FAKE_OPENAI_BIN`,
    );
  }
  const child = spawn(bin, args, {
    stdio: ["ignore", "pipe", "pipe"],
    // Plain text logs without colour, so lines can be searched.
    env: { ...process.env, NO_COLOR: "1", PARLEY_LOG_FORMAT: "", RUST_LOG: "info", ...env },
  });
  const lines: string[] = [];
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${bin} did not start within 30 s:\n${lines.slice(-30).join("\n")}`));
    }, 30_000);
    const onLine = (line: string) => {
      lines.push(line);
      if (process.env.E2E_VERBOSE) console.log(`[${bin.split("/").pop()}] ${line}`);
      const match = line.match(ready);
      if (match) {
        clearTimeout(timer);
        resolvePromise({ child, lines, match });
      }
    };
    createInterface({ input: child.stdout! }).on("line", onLine);
    createInterface({ input: child.stderr! }).on("line", onLine);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${bin} exited with ${code} before it was ready:\n${lines.slice(-30).join("\n")}`));
    });
  });
}

export interface FakeProvider {
  baseUrl: string;
  apiKey: string;
  /** Scripts the next replies (see testkit/src/fake_openai.rs for the fields). */
  script(replies: object | object[]): Promise<void>;
  clear(): Promise<void>;
  requests(): Promise<unknown[]>;
  stop(): void;
}

export async function startFakeProvider(): Promise<FakeProvider> {
  const { child, match } = await start(
    fakeOpenAiBin,
    ["--port", "0", "--chunk-delay-ms", "15"],
    /Fake OpenAI-compatible provider at (\S+) \(api key: ([^)]+)\)/,
  );
  const baseUrl = match[1];
  const control = baseUrl.replace(/\/v1\/?$/, "");
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${control}${path}`, {
      method,
      headers: body === undefined ? undefined : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`fake provider ${method} ${path}: ${res.status} ${await res.text()}`);
    return res;
  };
  return {
    baseUrl,
    apiKey: match[2],
    script: async (replies) => {
      await call("POST", "/__fake/replies", replies);
    },
    clear: async () => {
      await call("DELETE", "/__fake/replies");
    },
    requests: async () => (await (await call("GET", "/__fake/requests")).json()) as unknown[],
    stop: () => child.kill("SIGTERM"),
  };
}

export interface Parley {
  url: string;
  /** Every line the stack printed so far. */
  logs: string[];
  /** The newest verification code the log mailer printed for this login (and purpose:
   * "password_reset" or "email_verify", when given). */
  codeFor(login: string, purpose?: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startParley(options: { messagesPerMinute?: number; termsUrl?: string } = {}): Promise<Parley> {
  if (!existsSync(join(webDist, "index.html"))) {
    throw new Error(`${webDist}/index.html is missing: run npm run build first`);
  }
  const dataDir = mkdtempSync(join(tmpdir(), "parley-e2e-"));
  const { child, lines, match } = await start(
    parleyBin,
    [
      "--listen",
      "127.0.0.1:0",
      "--data-dir",
      dataDir,
      "--web-dir",
      webDist,
      // Every test signs in from 127.0.0.1: the per-address limits are for the real world.
      "--auth-requests-per-minute",
      "0",
      "--messages-per-minute",
      String(options.messagesPerMinute ?? 0),
      ...(options.termsUrl ? ["--terms-url", options.termsUrl] : []),
    ],
    /Parley is running at (http:\/\/\S+)/,
  );
  return {
    url: match[1],
    logs: lines,
    async codeFor(login: string, purpose?: string) {
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        const line = [...lines].reverse().find((l) => l.includes(login) && /code=\d{6}/.test(l) && (!purpose || l.includes(purpose)));
        const code = line?.match(/code=(\d{6})/)?.[1];
        if (code) return code;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`no verification code for ${login} in the log`);
    },
    async stop() {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      if (child.exitCode === null) child.kill("SIGKILL");
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

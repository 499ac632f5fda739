// Debian's chromium driven by playwright-core (no browser download), plus the few waiting
// helpers the tests need, and a screenshot of the page whenever a step fails.
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from "playwright-core";
import { it } from "vitest";

const web = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const artifacts = join(web, "e2e-artifacts");

export const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export function launch(): Promise<Browser> {
  if (!existsSync(chromiumPath)) {
    throw new Error(`${chromiumPath} is missing: install Debian's chromium (apt-get install -y chromium) or set CHROMIUM_PATH`);
  }
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

export interface Tab {
  context: BrowserContext;
  page: Page;
  /** Console errors and failed requests the page reported (CSP violations show up here). */
  problems: string[];
}

export async function openTab(
  browser: Browser,
  url: string,
  options: { viewport?: { width: number; height: number }; touch?: boolean; watch?: (context: BrowserContext) => void } = {},
): Promise<Tab> {
  const context = await browser.newContext({
    locale: "en-US",
    viewport: options.viewport ?? { width: 1280, height: 860 },
    // A phone: touch input, so `(pointer: fine)` does not match.
    ...(options.touch ? { hasTouch: true, isMobile: true } : {}),
    permissions: ["clipboard-read", "clipboard-write"],
  });
  // Before the first page loads, so nothing it sends is missed.
  options.watch?.(context);
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const problems: string[] = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") problems.push(`console: ${msg.text()}`);
  });
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  await page.goto(url);
  return { context, page, problems };
}

let current: Page | null = null;

/** The page a failing step screenshots. */
export function watchPage(page: Page | null): void {
  current = page;
}

/** A test that saves a screenshot of the watched page into e2e-artifacts/ when it fails. */
export function step(name: string, fn: () => Promise<void>, timeout = 60_000): void {
  it(
    name,
    async () => {
      try {
        await fn();
      } catch (err) {
        if (current && !current.isClosed()) {
          mkdirSync(artifacts, { recursive: true });
          const file = join(artifacts, `${name.replace(/[^\w-]+/g, "_").slice(0, 80)}.png`);
          await current.screenshot({ path: file, fullPage: true }).catch(() => {});
          console.error(`screenshot of the failed step: ${file}`);
        }
        throw err;
      }
    },
    timeout,
  );
}

/** Polls until `check` returns a truthy value; fails with `what` and the last value seen. */
export async function waitUntil<T>(what: string, check: () => Promise<T> | T, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      last = await check();
      if (last) return last as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${String(last)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function textOf(locator: Locator): Promise<string> {
  return (await locator.textContent()) ?? "";
}

// Lighthouse (mobile profile: Moto G Power screen, simulated slow 4G and 4x CPU slowdown)
// against a freshly started `parley` (PARLEY_BIN, a release build for honest figures) on two
// pages: the sign-in page, and a chat whose stored answer is a long Markdown text with code,
// a table and math, opened signed in. Prints the scores and the core timings; asserts none of
// them (speed is measured, never tested). `make bench-ui` runs it.
//
// Debian's chromium is started once with a debugging port; playwright-core connects to it to
// sign up, add a config and get the answer, then Lighthouse drives the same browser, so the
// page is measured with the HttpOnly refresh cookie that signs it in (Lighthouse's storage
// reset keeps cookies and clears the HTTP cache before each run).
import { afterAll, beforeAll, it } from "vitest";
import { launch as launchChrome, type LaunchedChrome } from "chrome-launcher";
import lighthouse, { type Flags, type Result } from "lighthouse";
import { chromium, type Browser } from "playwright-core";
import { startFakeProvider, startParley, parleyBin, type FakeProvider, type Parley } from "./stack";
import { artifacts, chromiumPath } from "./browser";
import { longMarkdownAnswer } from "./longAnswer";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cpus, loadavg } from "node:os";

const runs = Math.max(1, Number(process.env.LIGHTHOUSE_RUNS ?? 3));

interface Measured {
  page: string;
  performance: number;
  accessibility: number;
  bestPractices: number;
  fcp: number;
  lcp: number;
  tbt: number;
  cls: number;
  si: number;
  transferKib: number;
  /** Lighthouse's measure of this machine's CPU speed (higher is faster; a busy machine scores low). */
  benchmarkIndex: number;
}

const score = (lhr: Result, category: string) => Math.round((lhr.categories[category]?.score ?? 0) * 100);
const metric = (lhr: Result, audit: string) => lhr.audits[audit]?.numericValue ?? Number.NaN;

function summarise(page: string, lhr: Result): Measured {
  return {
    page,
    performance: score(lhr, "performance"),
    accessibility: score(lhr, "accessibility"),
    bestPractices: score(lhr, "best-practices"),
    fcp: metric(lhr, "first-contentful-paint"),
    lcp: metric(lhr, "largest-contentful-paint"),
    tbt: metric(lhr, "total-blocking-time"),
    cls: metric(lhr, "cumulative-layout-shift"),
    si: metric(lhr, "speed-index"),
    transferKib: metric(lhr, "total-byte-weight") / 1024,
    benchmarkIndex: lhr.environment.benchmarkIndex,
  };
}

function print(results: Measured[]) {
  const rows = results.map((r) => [
    r.page,
    String(r.performance),
    String(r.accessibility),
    String(r.bestPractices),
    `${(r.fcp / 1000).toFixed(1)} s`,
    `${(r.lcp / 1000).toFixed(1)} s`,
    `${Math.round(r.tbt)} ms`,
    r.cls.toFixed(3),
    `${(r.si / 1000).toFixed(1)} s`,
    `${Math.round(r.transferKib)} KiB`,
    String(Math.round(r.benchmarkIndex)),
  ]);
  const head = ["page", "Perf", "A11y", "BP", "FCP", "LCP", "TBT", "CLS", "SI", "transferred", "CPU index"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ");
  console.log(`\nLighthouse ${lighthouseVersion} (mobile, simulated slow 4G, 4x CPU), median of ${runs} run(s) by Performance:`);
  console.log(line(head));
  for (const row of rows) console.log(line(row));
  console.log(
    `(machine load average now: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}, ${cpus().length} CPUs)\n`,
  );
}

let lighthouseVersion = "";
let fake: FakeProvider;
let parley: Parley;
let chrome: LaunchedChrome;

beforeAll(async () => {
  [fake, parley] = await Promise.all([startFakeProvider(), startParley()]);
  chrome = await launchChrome({
    chromePath: chromiumPath,
    chromeFlags: [
      "--headless=new",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

afterAll(async () => {
  chrome?.kill();
  await parley?.stop();
  fake?.stop();
});

/** Signs up in the browser, adds a config for the fake provider, asks once and waits for the
 * stored answer; returns the chat's URL. The browser keeps the refresh cookie. */
async function chatWithLongAnswer(): Promise<string> {
  const browser: Browser = await chromium.connectOverCDP(`http://127.0.0.1:${chrome.port}`);
  try {
    const context = browser.contexts()[0];
    const page = await context.newPage();
    page.setDefaultTimeout(30_000);
    await page.goto(parley.url);
    await page.getByRole("button", { name: "Sign up" }).click();
    await page.getByLabel("Username").fill(`bench_${Date.now().toString(36)}`);
    await page.getByLabel("Password").fill("a long benchmark password");
    await page.getByRole("button", { name: "Create account" }).click();
    await page.getByText("Add an API config first").waitFor();
    await page.getByRole("button", { name: "Account menu" }).click();
    await page.getByRole("menuitem", { name: "API configs" }).click();
    await page.getByRole("button", { name: "Add API config" }).click();
    await page.getByLabel("Name", { exact: true }).fill("Fake provider");
    await page.getByLabel("Base URL").fill(fake.baseUrl);
    await page.getByLabel("API key").fill(fake.apiKey);
    await page.getByLabel("Model").fill("fake-model");
    await page.getByRole("button", { name: "Save" }).click();
    await page.getByTestId("api-config").waitFor();
    await page.getByRole("link", { name: "New chat" }).click();
    await fake.script([{ text: longMarkdownAnswer, chunk_size: 400, chunk_delay_ms: 5 }, { text: "Sorting, three ways" }]);
    await page.locator("#composer").fill("Show me merge sort in three languages, compare them, and prove its cost.");
    await page.locator("#composer").press("Enter");
    await page.waitForURL(/\/c\/\d+$/);
    await page.locator("article[data-role=assistant][data-status=complete] .katex").first().waitFor();
    // Opened once more, as a chat one comes back to: the page then knows which parts
    // (math, languages) this chat needs and fetches them with its messages.
    await page.reload();
    await page.locator("article[data-role=assistant] .katex").first().waitFor();
    const url = page.url();
    await page.close();
    return url;
  } finally {
    // Only the connection: the browser stays up for Lighthouse.
    await browser.close();
  }
}

/** One Lighthouse run; a run whose trace broke (NO_NAVSTART and the like, seen on a busy
 * machine) is repeated, twice at most. */
async function lighthouseRun(url: string, flags: Flags): Promise<Result> {
  for (let attempt = 1; ; attempt++) {
    const result = await lighthouse(url, flags);
    if (!result) throw new Error(`Lighthouse returned nothing for ${url}`);
    const { lhr } = result;
    lighthouseVersion = lhr.lighthouseVersion;
    if (!lhr.runtimeError) return lhr;
    if (attempt === 3) throw new Error(`Lighthouse failed on ${url}: ${lhr.runtimeError.message}`);
    console.warn(`Lighthouse run failed (${lhr.runtimeError.code}), running it again`);
  }
}

async function measure(page: string, url: string): Promise<Measured> {
  const flags: Flags = {
    port: chrome.port,
    output: "json",
    logLevel: "error",
    onlyCategories: ["performance", "accessibility", "best-practices"],
  };
  const all: Measured[] = [];
  for (let i = 0; i < runs; i++) {
    const lhr = await lighthouseRun(url, flags);
    all.push(summarise(page, lhr));
    if (process.env.LIGHTHOUSE_VERBOSE) {
      // The whole report, for a closer look (e2e-artifacts/ is not committed).
      mkdirSync(artifacts, { recursive: true });
      writeFileSync(join(artifacts, `lighthouse-${page.split(" ")[0]}-${i + 1}.json`), JSON.stringify(lhr));
      for (const id of [
        "render-blocking-resources",
        "unused-javascript",
        "uses-text-compression",
        "layout-shifts",
        "largest-contentful-paint-element",
      ]) {
        const audit = lhr.audits[id];
        if (audit) console.log(`${page}: ${id}: ${audit.displayValue ?? ""} ${JSON.stringify(audit.details ?? {}).slice(0, 600)}`);
      }
      for (const [id, audit] of Object.entries(lhr.audits)) {
        if (audit.score !== null && audit.score < 1 && lhr.categories.accessibility.auditRefs.some((ref) => ref.id === id))
          console.log(`${page}: accessibility: ${id}: ${audit.title}`);
      }
    }
  }
  all.sort((a, b) => a.performance - b.performance);
  return all[Math.floor(all.length / 2)];
}

it(
  "measures the sign-in page and a chat with a long Markdown answer",
  async () => {
    console.log(`measuring ${parleyBin} at ${parley.url}`);
    // First, while the browser has no session: the sign-in form.
    const signIn = await measure("sign-in", parley.url);
    const chatUrl = await chatWithLongAnswer();
    const chat = await measure("chat (long Markdown answer)", chatUrl);
    print([signIn, chat]);
  },
  30 * 60_000,
);

// How the page loads on a phone (issue 16): the sign-in page fetches only its own chunk; a chat
// with a long answer opens signed in with one session restore, its messages asked for once,
// no desktop sidebar (nor its rooms) behind the drawer, its math typeset in the first paint and
// its code coloured after, and nothing on the page moving while it all arrives.
import { afterAll, beforeAll, describe, expect } from "vitest";
import type { Browser, BrowserContext } from "playwright-core";
import { startFakeProvider, startParley, type FakeProvider, type Parley } from "./stack";
import { launch, step, waitUntil, watchPage } from "./browser";
import { longMarkdownAnswer } from "./longAnswer";

let fake: FakeProvider;
let parley: Parley;
let browser: Browser;
let phone: BrowserContext;

beforeAll(async () => {
  [fake, parley, browser] = await Promise.all([startFakeProvider(), startParley(), launch()]);
  phone = await browser.newContext({ locale: "en-US", viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true });
  // Every layout shift not caused by input, from the first paint on, as Lighthouse counts them.
  await phone.addInitScript(() => {
    const shifts: { value: number; sources: string[] }[] = [];
    (window as unknown as { shifts: typeof shifts }).shifts = shifts;
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries() as (PerformanceEntry & {
        value: number;
        hadRecentInput: boolean;
        sources?: { node?: Node | null; previousRect?: DOMRectReadOnly; currentRect?: DOMRectReadOnly }[];
      })[]) {
        if (entry.hadRecentInput) continue;
        // What moved: the element (or the text and the element it is in), and from where to where.
        const sources = (entry.sources ?? []).map((s) => {
          const node = s.node;
          const element = node instanceof Element ? node : (node?.parentElement ?? null);
          const what = node instanceof Element ? "" : `text "${(node?.textContent ?? "").slice(0, 40)}" in `;
          const rect = (r?: DOMRectReadOnly) =>
            r ? `${Math.round(r.x)},${Math.round(r.y)} ${Math.round(r.width)}x${Math.round(r.height)}` : "";
          return `${what}${element?.outerHTML.slice(0, 100) ?? "?"}: ${rect(s.previousRect)} -> ${rect(s.currentRect)}`;
        });
        shifts.push({ value: entry.value, sources });
      }
    }).observe({ type: "layout-shift", buffered: true });
  });
});

afterAll(async () => {
  await browser?.close();
  await parley?.stop();
  fake?.stop();
});

/** What the page asked for: each request's path, in order. */
function recordRequests() {
  const paths: string[] = [];
  const onRequest = (request: { url(): string }) => paths.push(new URL(request.url()).pathname);
  phone.on("request", onRequest);
  return { paths, stop: () => phone.off("request", onRequest) };
}

const shiftsOf = (page: import("playwright-core").Page) =>
  page.evaluate(() => (window as unknown as { shifts: { value: number; sources: string[] }[] }).shifts);

describe("the page on a phone", () => {
  let chatUrl = "";

  step("the sign-in page fetches the sign-in chunk alone and does not move", async () => {
    const requests = recordRequests();
    const page = await phone.newPage();
    watchPage(page);
    await page.goto(parley.url);
    await page.getByRole("button", { name: "Sign in" }).waitFor();
    requests.stop();
    const scripts = requests.paths.filter((path) => path.endsWith(".js"));
    expect(scripts.some((path) => /\/index-[\w-]+\.js$/.test(path))).toBe(true);
    expect(scripts.filter((path) => /SignedIn|math|highlight|rooms/.test(path))).toEqual([]);
    expect(await shiftsOf(page)).toEqual([]);
    await page.close();
  });

  step("a chat with a long answer opens at once, typeset, then coloured, without moving", async () => {
    const page = await phone.newPage();
    watchPage(page);
    page.setDefaultTimeout(30_000);
    await page.goto(parley.url);
    await page.getByRole("button", { name: "Sign up" }).click();
    await page.getByLabel("Username").fill("phone_user");
    await page.getByLabel("Password").fill("a long enough password");
    await page.getByRole("button", { name: "Create account" }).click();
    await page.getByText("Add an API config first").waitFor();
    await page.goto(`${parley.url}/settings/api-configs`);
    await page.getByRole("button", { name: "Add API config" }).click();
    await page.getByLabel("Name", { exact: true }).fill("Fake provider");
    await page.getByLabel("Base URL").fill(fake.baseUrl);
    await page.getByLabel("API key").fill(fake.apiKey);
    await page.getByLabel("Model").fill("fake-model");
    await page.getByRole("button", { name: "Save" }).click();
    await page.getByTestId("api-config").waitFor();
    await page.goto(parley.url);
    await fake.script([{ text: longMarkdownAnswer, chunk_size: 400, chunk_delay_ms: 5 }, { text: "Sorting, three ways" }]);
    await page.locator("#composer").fill("Show me merge sort in three languages.");
    await page.getByRole("button", { name: "Send" }).click();
    await page.waitForURL(/\/c\/\d+$/);
    await page.locator("article[data-role=assistant][data-status=complete] .katex").first().waitFor();
    chatUrl = page.url();

    // Opened again, as a chat one comes back to.
    const requests = recordRequests();
    await page.reload();
    const answer = page.locator("article[data-role=assistant]");
    await answer.locator(".katex math").first().waitFor();
    await answer.locator("pre code .hljs-keyword").first().waitFor();
    await page.waitForTimeout(500);
    requests.stop();
    const calls = (name: string) => requests.paths.filter((path) => path.endsWith(name)).length;
    expect(calls("/RefreshToken")).toBe(1);
    expect(calls("/ListMessages")).toBe(1);
    expect(calls("/GetSession")).toBe(1);
    // The drawer is closed: no sidebar behind it, so no rooms yet.
    expect(requests.paths.filter((path) => path.includes("RoomService") || /\/rooms-[\w-]+\.js$/.test(path))).toEqual([]);
    expect(await shiftsOf(page)).toEqual([]);

    // The drawer brings the chats and the rooms.
    const rooms = recordRequests();
    await page.getByRole("button", { name: "Open sidebar" }).click();
    const drawer = page.getByRole("dialog", { name: "Chats" });
    await drawer.getByRole("link", { name: /Sorting, three ways/ }).waitFor();
    await drawer.getByTestId("rooms-section").waitFor();
    await waitUntil("the rooms listed", () => rooms.paths.some((path) => path.endsWith("/ListMyRooms")));
    rooms.stop();
    await page.close();
  });

  step("a chat opened from the list of another chat shows its answer whole", async () => {
    // The page's first chat is given to the first chat view only; the next one is read anew.
    const page = await phone.newPage();
    watchPage(page);
    await page.goto(parley.url);
    await page.getByRole("button", { name: "Open sidebar" }).click();
    await page
      .getByRole("dialog", { name: "Chats" })
      .getByRole("link", { name: /Sorting, three ways/ })
      .click();
    await page.waitForURL(chatUrl);
    await page.locator("article[data-role=assistant] .katex math").first().waitFor();
    await page.locator("article[data-role=assistant] pre code .hljs-keyword").first().waitFor();
    expect(await page.locator("article[data-role=assistant] table td").count()).toBeGreaterThan(0);
    await page.close();
  });
});

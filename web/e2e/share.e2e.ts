// Export, import and share links in a real headless Chromium against the real stack: a chat
// exported as JSON imports back with the same messages; an account's export is a zip; a share
// link opens in a fresh, signed-out browser context, and once revoked says it does not exist.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect } from "vitest";
import type { Browser, Page } from "playwright-core";
import { startFakeProvider, startParley, type FakeProvider, type Parley } from "./stack";
import { launch, openTab, step, textOf, waitUntil, watchPage } from "./browser";

const carol = { username: `carol_${Date.now().toString(36)}`, password: "share and share alike" };
const question = "Which city should I visit first in Japan?";
const answer = "**Kyoto**, for its temples.";
const title = "Japan trip";

let parley: Parley;
let fake: FakeProvider;
let browser: Browser;
let page: Page;
let chatId = "";
let exported: { format: string; chat: { title: string; messages: { role: string; content: string }[] } };
let exportedPath = "";
let shareUrl = "";

beforeAll(async () => {
  [fake, parley] = await Promise.all([startFakeProvider(), startParley()]);
  browser = await launch();
  page = (await openTab(browser, parley.url)).page;
  watchPage(page);
});

afterAll(async () => {
  await browser?.close();
  await parley?.stop();
  fake?.stop();
});

/** An item of the open chat's menu in the sidebar (the import makes a second chat of the same name). */
async function chatMenu(item: string) {
  await page
    .locator("li", { has: page.locator("a[aria-current=page]") })
    .getByRole("button", { name: `Chat options: ${title}` })
    .click();
  await page.getByRole("menuitem", { name: item }).click();
}

/** The texts of the chat's messages, in order. */
async function messagesShown(p: Page): Promise<string[]> {
  const texts = await p
    .locator("article[data-role=user] div.whitespace-pre-wrap, article[data-role=assistant] [data-testid=assistant-content]")
    .allTextContents();
  return texts.map((t) => t.replace(/\s+/g, " ").trim());
}

describe("export, import and share links", () => {
  step("signs up, adds a config and has a chat", async () => {
    await page.getByRole("button", { name: "Sign up" }).click();
    await page.getByLabel("Username").fill(carol.username);
    await page.getByLabel("Password").fill(carol.password);
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
    await fake.script([{ text: answer }, { text: title }]);
    await page.locator("#composer").fill(question);
    await page.locator("#composer").press("Enter");
    await page.waitForURL(/\/c\/\d+$/);
    chatId = page.url().split("/").pop() ?? "";
    await page.locator("article[data-role=assistant][data-status=complete]").waitFor();
    await page.getByTestId("chat-title").filter({ hasText: title }).waitFor();
  });

  step("exports the chat as JSON and as Markdown", async () => {
    const [download] = await Promise.all([page.waitForEvent("download"), chatMenu("Export as JSON")]);
    expect(download.suggestedFilename()).toBe(`${chatId}-japan-trip.json`);
    exportedPath = (await download.path()) ?? "";
    exported = JSON.parse(readFileSync(exportedPath, "utf8"));
    expect(exported.format).toBe("parley.chat");
    expect(exported.chat.title).toBe(title);
    expect(exported.chat.messages.map((m) => [m.role, m.content])).toEqual([
      ["user", question],
      ["assistant", answer],
    ]);
    expect(readFileSync(exportedPath, "utf8")).not.toContain(fake.apiKey);

    const [markdown] = await Promise.all([page.waitForEvent("download"), chatMenu("Export as Markdown")]);
    expect(markdown.suggestedFilename()).toBe(`${chatId}-japan-trip.md`);
    const text = readFileSync((await markdown.path()) ?? "", "utf8");
    expect(text).toContain(`# ${title}`);
    expect(text).toContain(answer);
  });

  step("imports the export back as a new chat with the same messages", async () => {
    const original = await messagesShown(page);
    expect(original).toEqual([question, "Kyoto, for its temples."]);
    await page.getByRole("button", { name: "Account menu" }).click();
    await page.getByRole("menuitem", { name: "Profile" }).click();
    await page.getByRole("link", { name: "Data" }).click();
    await page.getByTestId("import-file").setInputFiles(exportedPath);
    await page.waitForURL((url) => /\/c\/\d+$/.test(url.pathname) && !url.pathname.endsWith(`/${chatId}`));
    await page.locator("article[data-role=assistant][data-status=complete]").waitFor();
    expect(await messagesShown(page)).toEqual(original);
    // Both chats are listed.
    await waitUntil(
      "two chats named after the trip",
      async () => (await page.getByTestId("chat-title").filter({ hasText: title }).count()) === 2,
    );
  });

  step("a bad file imports nothing and says what is wrong", async () => {
    const before = await page.getByTestId("chat-title").count();
    await page.getByRole("button", { name: "Account menu" }).click();
    await page.getByRole("menuitem", { name: "Profile" }).click();
    await page.getByRole("link", { name: "Data" }).click();
    await page.getByTestId("import-file").setInputFiles({
      name: "broken.json",
      mimeType: "application/json",
      buffer: Buffer.from(
        JSON.stringify({
          ...exported,
          chat: { ...exported.chat, messages: [{ id: 1, role: "tool", status: "complete", created_at: "2026-01-01T00:00:00Z" }] },
        }),
      ),
    });
    const status = page.getByTestId("import-status");
    await status.filter({ hasText: "Could not import" }).waitFor();
    expect(await textOf(status)).toContain('role "tool"');
    expect(await page.getByTestId("chat-title").count()).toBe(before);
  });

  step("exports all of the account's data as a zip", async () => {
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export all my data" }).click()]);
    expect(download.suggestedFilename()).toMatch(/^parley-export-\d{4}-\d{2}-\d{2}\.zip$/);
    const zip = readFileSync((await download.path()) ?? "");
    expect(zip.subarray(0, 4).toString("latin1")).toBe("PK\u0003\u0004");
    const names = zip.toString("latin1");
    for (const name of ["settings.json", "personas.json", "api_configs.json", `chats/${chatId}-japan-trip.json`]) {
      expect(names).toContain(name);
    }
    await page
      .getByTestId("export-status")
      .filter({ hasText: /Exported \d+ files/ })
      .waitFor();
  });

  step("shares a snapshot that a signed-out browser opens, until the link is revoked", async () => {
    await page.goto(`${parley.url}/c/${chatId}`);
    await page.locator("article[data-role=assistant][data-status=complete]").waitFor();
    await chatMenu("Share");
    await page.getByRole("button", { name: "Create link" }).click();
    shareUrl = await page.getByTestId("share-url").inputValue();
    expect(shareUrl).toMatch(new RegExp(`^${parley.url}/s/[A-Za-z0-9_-]{43}$`));

    // A later message is not part of the snapshot.
    await page.getByRole("button", { name: "Close" }).click();
    await fake.script([{ text: "Osaka, for its food." }]);
    await page.locator("#composer").fill("And after that?");
    await page.locator("#composer").press("Enter");
    await page.locator("article[data-role=assistant][data-status=complete]").nth(1).waitFor();

    const stranger = await browser.newContext({ locale: "en-US" });
    const shared = await stranger.newPage();
    watchPage(shared);
    const requests: string[] = [];
    shared.on("request", (r) => requests.push(new URL(r.url()).pathname));
    await shared.goto(shareUrl);
    await shared.getByTestId("shared-title").filter({ hasText: title }).waitFor();
    expect(await shared.getByTestId("shared-user").allTextContents()).toEqual([expect.stringContaining(question)]);
    const answers = await shared.getByTestId("shared-assistant").allTextContents();
    expect(answers).toHaveLength(1);
    expect(answers[0]).toContain("Kyoto, for its temples.");
    // Rendered as Markdown, not as source.
    expect(await shared.getByTestId("shared-assistant").locator("strong").textContent()).toBe("Kyoto");
    expect(await shared.content()).not.toContain("Osaka");
    // Signed out: no sign-in form, no token refresh.
    expect(await shared.getByRole("button", { name: "Sign in", exact: true }).count()).toBe(0);
    expect(requests.some((p) => p.endsWith("/RefreshToken"))).toBe(false);

    // Revoked from the chat's share dialog: the link says it does not exist.
    watchPage(page);
    await chatMenu("Share");
    const link = page.getByTestId("share-link").first();
    await link.waitFor();
    await link.getByRole("button", { name: "Revoke" }).click();
    await link.getByTestId("confirm-revoke").click();
    await page.getByText("No shared links.").waitFor();
    watchPage(shared);
    await shared.reload();
    await shared.getByTestId("shared-not-found").waitFor();
    await stranger.close();
  });
});

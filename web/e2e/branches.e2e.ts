// Versions and branches in a real headless Chromium against the real stack: a regenerated
// answer is a second version ("‹ 2 / 2 ›"); switching versions shows each one with the
// conversation that followed it; editing an earlier question forks a branch that the model
// answers without the old one; and the version shown is the server's, so it survives reloads.
import { afterAll, beforeAll, describe, expect } from "vitest";
import type { Browser, Page } from "playwright-core";
import { startFakeProvider, startParley, type FakeProvider, type Parley } from "./stack";
import { launch, openTab, step, textOf, waitUntil, watchPage } from "./browser";

const dora = { username: `dora_${Date.now().toString(36)}`, password: "versions all the way down" };

let parley: Parley;
let fake: FakeProvider;
let browser: Browser;
let page: Page;

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

/** The texts of the chat's messages, in order. */
async function shown(): Promise<string[]> {
  const texts = await page
    .locator("article[data-role=user] div.whitespace-pre-wrap, article[data-role=assistant] [data-testid=assistant-content]")
    .allTextContents();
  return texts.map((t) => t.replace(/\s+/g, " ").trim());
}

async function waitShown(what: string, expected: string[]) {
  await waitUntil(what, async () => JSON.stringify(await shown()) === JSON.stringify(expected));
}

const answer = (text: string) => page.locator("article[data-role=assistant]").filter({ hasText: text });
const question = (text: string) => page.locator("article[data-role=user]").filter({ hasText: text });
const position = (article: ReturnType<Page["locator"]>) => article.getByTestId("version-position");

/** What the model was shown last of the conversation (the persona's system prompt aside):
 * the messages of the newest chat completion request. */
async function lastAsked(): Promise<string[]> {
  const requests = (await fake.requests()) as { path: string; body?: { messages?: { role: string; content: string }[] } }[];
  const messages = requests.filter((r) => r.path.endsWith("/chat/completions")).at(-1)?.body?.messages ?? [];
  return messages.filter((m) => m.role !== "system").map((m) => m.content);
}

describe("versions and branches", () => {
  step("signs up, adds a config and has a chat", async () => {
    await page.getByRole("button", { name: "Sign up" }).click();
    await page.getByLabel("Username").fill(dora.username);
    await page.getByLabel("Password").fill(dora.password);
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
    await fake.script([{ text: "Red." }, { text: "Colours" }]);
    await page.locator("#composer").fill("Name a colour");
    await page.locator("#composer").press("Enter");
    await page.waitForURL(/\/c\/\d+$/);
    await answer("Red.").and(page.locator("[data-status=complete]")).waitFor();
    // One version: no switcher.
    expect(await page.getByTestId("version-switcher").count()).toBe(0);
  });

  step("regenerating keeps the old answer as version 1 of 2", async () => {
    await fake.script([{ text: "Blue.", chunk_delay_ms: 5 }]);
    await answer("Red.").getByRole("button", { name: "Regenerate" }).click();
    await position(answer("Blue.")).filter({ hasText: "2 / 2" }).waitFor();
    expect(await shown()).toEqual(["Name a colour", "Blue."]);

    await fake.script([{ text: "Because it is calm." }]);
    await page.locator("#composer").fill("Why that one?");
    await page.locator("#composer").press("Enter");
    await answer("Because it is calm.").and(page.locator("[data-status=complete]")).waitFor();
    expect(await lastAsked()).toEqual(["Name a colour", "Blue.", "Why that one?"]);
  });

  step("switching to the first version shows its branch, and it survives a reload", async () => {
    await answer("Blue.").getByRole("button", { name: "Previous version" }).click();
    await waitShown("the first version's branch", ["Name a colour", "Red."]);
    expect(await textOf(position(answer("Red.")))).toBe("1 / 2");
    expect(await position(answer("Red.")).getAttribute("aria-label")).toBe("Version 1 of 2");

    await page.reload();
    await answer("Red.").waitFor();
    expect(await shown()).toEqual(["Name a colour", "Red."]);

    // The keyboard reaches the switcher: back to version 2 and what followed it.
    await answer("Red.").getByRole("button", { name: "Next version" }).focus();
    await page.keyboard.press("Enter");
    await waitShown("the second version's branch", ["Name a colour", "Blue.", "Why that one?", "Because it is calm."]);
  });

  step("editing an earlier question forks a branch the model answers without the old one", async () => {
    await fake.script([{ text: "Apple.", chunk_delay_ms: 5 }]);
    await question("Name a colour").getByRole("button", { name: "Edit" }).click();
    const editor = page.getByRole("textbox", { name: "Edit" });
    await editor.fill("Name a fruit");
    await page.getByRole("button", { name: "Send edit" }).click();
    await answer("Apple.").and(page.locator("[data-status=complete]")).waitFor();
    await waitShown("the new branch", ["Name a fruit", "Apple."]);
    expect(await lastAsked()).toEqual(["Name a fruit"]);
    await position(question("Name a fruit")).filter({ hasText: "2 / 2" }).waitFor();

    await page.reload();
    await answer("Apple.").waitFor();
    expect(await shown()).toEqual(["Name a fruit", "Apple."]);

    // The old question is version 1, with the branch as it was last shown.
    await question("Name a fruit").getByRole("button", { name: "Previous version" }).click();
    await waitShown("the old branch", ["Name a colour", "Blue.", "Why that one?", "Because it is calm."]);
    await page.reload();
    await answer("Because it is calm.").waitFor();
    expect(await shown()).toEqual(["Name a colour", "Blue.", "Why that one?", "Because it is calm."]);
    expect(await textOf(position(question("Name a colour")))).toBe("1 / 2");
    expect(await textOf(position(answer("Blue.")))).toBe("2 / 2");
  });
});

// The model picker, the chat settings panel and ended chats, in a real headless Chromium
// against the real stack: a new user adds two API configs on the fake provider (the form's
// natural order: base URL and key, models loading by themselves, then save and straight back
// to the chat), picks a model of the second config from the searchable, grouped picker, sees
// which model wrote the answer, changes the temperature and system prompt (the provider
// receives them), and ends and reopens the chat.
import { afterAll, beforeAll, describe, expect } from "vitest";
import type { Browser, Page } from "playwright-core";
import { startFakeProvider, startParley, type FakeProvider, type Parley } from "./stack";
import { launch, openTab, step, textOf, waitUntil, watchPage } from "./browser";

const user = { username: `models_${Date.now().toString(36)}`, password: "a long enough password" };

let parley: Parley;
let fake: FakeProvider;
let browser: Browser;
let page: Page;

interface Recorded {
  path: string;
  body?: { model?: string; temperature?: number; messages?: { role: string; content: string }[] };
}

/** The chat request that asked `question` (a title request may come in between). */
async function requestFor(question: string): Promise<Recorded["body"]> {
  const requests = (await fake.requests()) as Recorded[];
  return requests.filter((r) => r.path.endsWith("/chat/completions") && r.body?.messages?.at(-1)?.content === question).at(-1)?.body;
}

/** Adds a config through the form: base URL and key first; the models load by themselves. */
async function addConfig(name: string) {
  const form = page.getByRole("form", { name: "Add API config" });
  await form.getByLabel("Base URL").fill(fake.baseUrl);
  await form.getByLabel("API key").fill(fake.apiKey);
  // No click: the provider's models arrive once the base URL and the key are there.
  await form
    .getByTestId("models-status")
    .filter({ hasText: /2 models/ })
    .waitFor();
  expect(await form.getByLabel("Model").inputValue()).toBe("fake-model");
  await form.getByLabel("Name", { exact: true }).fill(name);
  await form.getByRole("button", { name: "Test connection" }).click();
  await form
    .getByTestId("test-result")
    .filter({ hasText: /Connected in \d+ ms/ })
    .waitFor();
  await form.getByRole("button", { name: "Save" }).click();
  await page.getByTestId("api-config").filter({ hasText: name }).waitFor();
}

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

describe("models and chat settings", () => {
  step("the empty state opens the config form itself, which says what is missing in words", async () => {
    await page.getByRole("button", { name: "Sign up" }).click();
    await page.getByLabel("Username").fill(user.username);
    await page.getByLabel("Password").fill(user.password);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.getByText("Add an API config first").waitFor();
    await page.getByRole("button", { name: "Add API config" }).click();
    // Straight into the form, base URL first.
    const form = page.getByRole("form", { name: "Add API config" });
    await form.waitFor();
    await form.getByLabel("Base URL").fill("");
    await form.getByRole("button", { name: "Save" }).click();
    const missing = await textOf(form.getByTestId("config-missing"));
    expect(missing).toBe("Still needed: the base URL, the API key, a model, and a name.");
    expect(missing).not.toMatch(/base_url|api_key/);
    await addConfig("Main");
    // Saved: the way back to the chat is right there.
    await page.getByTestId("config-saved").getByRole("button", { name: "Start a chat" }).waitFor();
    await page.getByRole("button", { name: "Add API config" }).click();
    await addConfig("Second");
    await page.getByTestId("config-saved").getByRole("button", { name: "Start a chat" }).click();
    await page.locator("#composer").waitFor();
  });

  step("the picker lists every model of both configs, grouped and searchable; the answer names its model", async () => {
    await fake.script({ text: "First answer.", chunk_delay_ms: 5 });
    await page.locator("#composer").fill("Hello");
    await page.locator("#composer").press("Enter");
    const first = page.locator("article[data-role=assistant]").first();
    await first.filter({ hasText: "First answer." }).waitFor();
    expect(await textOf(first.getByTestId("answer-model"))).toBe("fake-model · Main");

    await page.getByTestId("model-picker-button").click();
    const picker = page.getByTestId("model-picker");
    await picker.getByTestId("model-choice").first().waitFor();
    const groups = await picker.getByTestId("model-group").evaluateAll((els) => els.map((e) => e.getAttribute("data-group")));
    expect(groups).toEqual(["Main", "Second"]);
    for (const group of ["Main", "Second"]) {
      const models = await picker
        .locator(`[data-testid=model-group][data-group="${group}"] [data-testid=model-choice]`)
        .evaluateAll((els) => els.map((e) => e.getAttribute("data-model")));
      expect(models).toEqual(["fake-model", "fake-reasoner"]);
    }
    // The chat answers with Main's model now.
    expect(await picker.locator('[data-config="Main"][data-model="fake-model"]').getAttribute("aria-current")).toBe("true");

    await picker.getByLabel("Search models").fill("reason second");
    await waitUntil("the search to narrow the list", async () => (await picker.getByTestId("model-choice").count()) === 1);
    const only = picker.getByTestId("model-choice");
    expect([await only.getAttribute("data-config"), await only.getAttribute("data-model")]).toEqual(["Second", "fake-reasoner"]);

    // A favourite is kept on the server: it is listed first, also after a reload.
    await picker.getByRole("button", { name: "Add fake-reasoner (Second) to favourites" }).click();
    await picker.getByLabel("Search models").fill("");
    await picker.locator('[data-group="favorites"] [data-model="fake-reasoner"]').waitFor();

    await picker.locator('[data-group="Second"] [data-model="fake-reasoner"]').click();
    await page.getByTestId("header-model").filter({ hasText: "fake-reasoner" }).waitFor();
    await fake.script({ text: "Second answer.", chunk_delay_ms: 5 });
    await page.locator("#composer").fill("Which model now?");
    await page.locator("#composer").press("Enter");
    const second = page.locator("article[data-role=assistant]").last();
    await second.filter({ hasText: "Second answer." }).waitFor();
    expect(await textOf(second.getByTestId("answer-model"))).toBe("fake-reasoner · Second");
    expect((await requestFor("Which model now?"))?.model).toBe("fake-reasoner");
    // The earlier answer still names who wrote it.
    expect(await textOf(first.getByTestId("answer-model"))).toBe("fake-model · Main");
    // Token usage is there for each answer (on hover or focus).
    expect(await textOf(second.getByTestId("answer-usage"))).toMatch(/\d+ in · \d+ out/);

    await page.reload();
    await page
      .locator("article[data-role=assistant]")
      .last()
      .getByTestId("answer-model")
      .filter({ hasText: "fake-reasoner · Second" })
      .waitFor();
    await page.getByTestId("model-picker-button").click();
    await page.locator('[data-testid=model-picker] [data-group="favorites"] [data-model="fake-reasoner"]').waitFor();
    await page.keyboard.press("Escape");
  });

  step("the settings panel changes the temperature and system prompt, and the provider gets them", async () => {
    await page.getByTestId("chat-settings-button").click();
    const panel = page.getByTestId("chat-settings");
    await panel.getByLabel("Temperature").fill("3");
    await panel.getByRole("button", { name: "Save" }).click();
    await panel.getByText("Temperature must be between 0 and 2.").waitFor();
    await panel.getByLabel("Temperature").fill("0.4");
    await panel.getByLabel("System prompt").fill("Answer like a pirate.");
    await panel.getByRole("button", { name: "Save" }).click();
    await panel.waitFor({ state: "detached" });

    await fake.script({ text: "Arr.", chunk_delay_ms: 5 });
    await page.locator("#composer").fill("Say hi");
    await page.locator("#composer").press("Enter");
    await page.locator("article[data-role=assistant]").last().filter({ hasText: "Arr." }).waitFor();
    const sent = await requestFor("Say hi");
    expect(sent?.temperature).toBeCloseTo(0.4, 5);
    expect(sent?.messages?.[0]).toMatchObject({ role: "system", content: "Answer like a pirate." });
  });

  step("an ended chat is read-only until reopened", async () => {
    await page.getByTestId("chat-settings-button").click();
    await page.getByTestId("chat-settings").getByRole("button", { name: "End chat" }).click();
    const notice = page.getByTestId("chat-ended");
    await notice.waitFor();
    expect(await textOf(notice)).toMatch(/This chat was ended on .+ It is read-only until you reopen it\./);
    const box = page.locator("#composer");
    expect(await box.evaluate((el) => (el as HTMLTextAreaElement).readOnly)).toBe(true);
    expect(await box.getAttribute("placeholder")).toBe("This chat was ended: reopen it to write.");
    expect(await page.getByRole("button", { name: "Send" }).isDisabled()).toBe(true);
    // Still ended after a reload (it is the server's state).
    await page.reload();
    await page.getByTestId("chat-ended").waitFor();

    await page.getByTestId("chat-ended").getByRole("button", { name: "Reopen chat" }).click();
    await page.getByTestId("chat-ended").waitFor({ state: "detached" });
    expect(await box.evaluate((el) => (el as HTMLTextAreaElement).readOnly)).toBe(false);
    await fake.script({ text: "Back again.", chunk_delay_ms: 5 });
    await box.fill("Still there?");
    await box.press("Enter");
    await page.locator("article[data-role=assistant]").last().filter({ hasText: "Back again." }).waitFor();
  });
});

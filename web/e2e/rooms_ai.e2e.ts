// The room's AI with a persona, in two browsers: Alice gives her room an AI speaking as one of
// her personas; Bob asks it by the persona's name, both watch it stream, Bob stops it and both
// see it stopped with its text kept. Then "Seen by" under the latest message, live.
import { afterAll, beforeAll, describe, expect } from "vitest";
import type { Browser, Page } from "playwright-core";
import { startFakeProvider, startParley, type FakeProvider, type Parley } from "./stack";
import { launch, openTab, step, textOf, waitUntil, watchPage, type Tab } from "./browser";

const stamp = Date.now().toString(36);
const alice = { username: `aiowner_${stamp}` };
const bob = { username: `aiasker_${stamp}`, displayName: "Bob Asker" };

let parley: Parley;
let fake: FakeProvider;
let browser: Browser;
let first: Tab;
let second: Tab;
let a: Page;
let b: Page;

async function signUp(p: Page, username: string, displayName?: string) {
  watchPage(p);
  await p.getByRole("button", { name: "Sign up" }).click();
  await p.getByLabel("Username").fill(username);
  await p.getByLabel("Password").fill("a long persona password");
  if (displayName) await p.getByLabel("Display name (optional)").fill(displayName);
  await p.getByRole("button", { name: "Create account" }).click();
  await p.getByTestId("user-name").filter({ hasText: displayName ?? username }).waitFor();
}

async function openAccountMenu(p: Page, item: string) {
  await p.getByRole("button", { name: "Account menu" }).click();
  await p.getByRole("menuitem", { name: item }).click();
}

beforeAll(async () => {
  [fake, parley] = await Promise.all([startFakeProvider(), startParley()]);
  browser = await launch();
  [first, second] = await Promise.all([openTab(browser, parley.url), openTab(browser, parley.url)]);
  [a, b] = [first.page, second.page];
});

afterAll(async () => {
  await browser?.close();
  await parley?.stop();
  fake?.stop();
});

describe("the room's AI as a persona, stopped mid-answer", () => {
  step("Alice makes a config, a persona and a room; Bob joins by link", async () => {
    await signUp(a, alice.username);
    await signUp(b, bob.username, bob.displayName);

    watchPage(a);
    await openAccountMenu(a, "API configs");
    await a.getByRole("button", { name: "Add API config" }).click();
    await a.getByLabel("Name", { exact: true }).fill("Persona room AI");
    await a.getByLabel("Base URL").fill(fake.baseUrl);
    await a.getByLabel("API key").fill(fake.apiKey);
    await a.getByLabel("Model").fill("fake-model");
    await a.getByRole("button", { name: "Save" }).click();
    await a.getByTestId("api-config").filter({ hasText: "Persona room AI" }).waitFor();

    await openAccountMenu(a, "Personas");
    await a.getByRole("button", { name: "New persona" }).click();
    const form = a.getByRole("form", { name: "New persona" });
    await form.getByLabel("Name").fill("Marvin");
    await form.getByLabel("System prompt").fill("You are a gloomy robot.");
    await form.getByRole("button", { name: "Save" }).click();
    await a.getByTestId("persona").filter({ hasText: "Marvin" }).waitFor();

    await a.getByRole("button", { name: "Room actions" }).click();
    await a.getByRole("menuitem", { name: "Create room" }).click();
    const create = a.getByRole("dialog", { name: "Create room" });
    await create.getByLabel("Name").fill("Persona room");
    await create.getByRole("button", { name: "Create" }).click();
    await a.getByTestId("chat-header").getByText("# Persona room").waitFor();
    await a.getByRole("button", { name: "Members" }).click();
    await a.getByRole("button", { name: "Create invite code" }).click();
    const code = await textOf(a.getByTestId("invite-code-value"));
    await a.getByRole("button", { name: "Members" }).click();

    watchPage(b);
    await b.goto(`${parley.url}/rooms/join/${encodeURIComponent(code)}`);
    await b.getByTestId("chat-header").getByText("# Persona room").waitFor();
  });

  step("the AI speaks as Marvin; Bob asks by name and stops it, both see it stopped", async () => {
    watchPage(a);
    await a.getByRole("button", { name: "Room settings" }).click();
    const settings = a.getByRole("dialog", { name: "Room settings" });
    await settings.getByLabel(/AI member/).selectOption({ label: "Persona room AI" });
    await settings.getByTestId("room-ai-persona").selectOption({ label: "Marvin" });
    await settings.getByRole("button", { name: "Apply" }).click();
    await settings.getByText(/members mention @ai/).waitFor();
    await settings.getByRole("button", { name: "Close" }).click();

    await fake.script({ text: "Life. Don't talk to me about life. ".repeat(60), chunk_size: 6, chunk_delay_ms: 60 });
    watchPage(b);
    // The persona's name is offered among the mentions.
    await b.locator("#composer").pressSequentially("@Mar", { delay: 20 });
    await b.getByRole("listbox", { name: "People to mention" }).getByRole("option", { name: /@Marvin/ }).waitFor();
    await b.locator("#composer").press("Enter");
    await waitUntil("the persona's name inserted", async () => (await b.locator("#composer").inputValue()) === "@Marvin ");
    await b.locator("#composer").pressSequentially("how are you?", { delay: 5 });
    await b.locator("#composer").press("Enter");
    const answerOf = (p: Page) => p.locator("article[data-author=ai]").filter({ hasText: "Don't talk to me about life" });
    for (const p of [a, b]) {
      await answerOf(p).getByText("Marvin", { exact: true }).waitFor();
      // The asker and the owner may stop it.
      await answerOf(p).getByTestId("room-stop-answer").waitFor();
    }
    await answerOf(b).getByTestId("room-stop-answer").click();
    for (const p of [a, b]) {
      await answerOf(p).getByTestId("room-answer-stopped").waitFor();
      expect(await answerOf(p).getByTestId("room-stop-answer").count()).toBe(0);
    }
    // It kept what it had written: the same text in both, shorter than the whole answer.
    const kept = await textOf(answerOf(b).getByTestId("room-message-text"));
    await waitUntil("the same text for Alice", async () => (await textOf(answerOf(a).getByTestId("room-message-text"))) === kept);
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan("Life. Don't talk to me about life. ".repeat(60).trim().length);
  });

  step("Alice sees who has read her latest message, live", async () => {
    watchPage(a);
    await a.locator("#composer").fill("Did everyone read this?");
    await a.locator("#composer").press("Enter");
    await b.getByTestId("room-messages").getByText("Did everyone read this?").waitFor();
    // Bob has the room open: it is read, and Alice is told.
    await a.getByTestId("room-seen-by").filter({ hasText: `Seen by ${bob.displayName}` }).waitFor();
  });
});

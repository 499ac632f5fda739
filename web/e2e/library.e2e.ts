// The chat screen's library (issue 15) in a real headless Chromium against the real stack:
// saved prompts inserted with `/` in the composer (a variable asked for in a small form),
// folders in the sidebar and the archive's own view, and deleting a persona or a config that
// chats use: the confirmation says how many and what they use instead, and old answers keep
// the persona's name and avatar.
import { afterAll, beforeAll, describe, expect } from "vitest";
import type { Browser, Page } from "playwright-core";
import { startFakeProvider, startParley, type FakeProvider, type Parley } from "./stack";
import { launch, openTab, step, textOf, waitUntil, watchPage } from "./browser";

const dora = { username: `dora_${Date.now().toString(36)}`, password: "a library of prompts" };

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

async function openSettings(item: string) {
  await page.getByRole("button", { name: "Account menu" }).click();
  await page.getByRole("menuitem", { name: item }).click();
}

async function addConfig(name: string) {
  await page.getByRole("button", { name: "Add API config" }).click();
  await page.getByLabel("Name", { exact: true }).fill(name);
  await page.getByLabel("Base URL").fill(fake.baseUrl);
  await page.getByLabel("API key").fill(fake.apiKey);
  await page.getByLabel("Model").fill("fake-model");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByTestId("api-config").filter({ hasText: name }).waitFor();
}

/** Starts a chat from the new-chat page with a persona and a config, and waits for its
 * answer (and title). */
async function chat(question: string, answer: string, title: string, persona: string, config: string) {
  await page.getByRole("link", { name: "New chat" }).click();
  await page.getByLabel("Persona").selectOption({ label: persona });
  await page.getByLabel("API config").selectOption({ label: `${config} · fake-model` });
  await fake.script([{ text: answer }, { text: title }]);
  await page.locator("#composer").fill(question);
  await page.locator("#composer").press("Enter");
  await page.waitForURL(/\/c\/\d+$/);
  await page.locator("article[data-role=assistant][data-status=complete]").filter({ hasText: answer }).waitFor();
  await page.getByTestId("chat-title").filter({ hasText: title }).waitFor();
}

describe("prompts, folders, the archive and what deleting says", () => {
  step("signs up and adds two configs", async () => {
    await page.getByRole("button", { name: "Sign up" }).click();
    await page.getByLabel("Username").fill(dora.username);
    await page.getByLabel("Password").fill(dora.password);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.getByText("Add an API config first").waitFor();
    await openSettings("API configs");
    await addConfig("Library main");
    await addConfig("Library spare");
  });

  step("saves prompts in Settings → Prompts; a bad command is refused in words", async () => {
    await page.goto(`${parley.url}/settings/prompts`);
    await page.getByRole("button", { name: "New prompt" }).click();
    const form = page.getByRole("form", { name: "New prompt" });
    await form.getByLabel("Title").fill("Explain simply");
    await form.getByLabel("Command").fill("explain");
    await form.getByLabel("Text").fill("Explain {{topic}} to a child.");
    await form.getByRole("button", { name: "Save" }).click();
    const saved = page.getByTestId("saved-prompt").filter({ hasText: "/explain" });
    await saved.waitFor();
    expect(await textOf(saved)).toContain("Variables: topic");

    await page.getByRole("button", { name: "New prompt" }).click();
    await form.getByLabel("Title").fill("Same command");
    await form.getByLabel("Command").fill("explain");
    await form.getByLabel("Text").fill("Other text");
    await form.getByRole("button", { name: "Save" }).click();
    await form.getByRole("alert").waitFor();
    await form.getByLabel("Title").fill("Be brief");
    await form.getByLabel("Command").fill("brief");
    await form.getByLabel("Text").fill("Answer in one sentence.");
    await form.getByRole("button", { name: "Save" }).click();
    await page.getByTestId("saved-prompt").filter({ hasText: "/brief" }).waitFor();
  });

  step("typing / lists the prompts; arrows, Enter and the variables form insert the filled text", async () => {
    await page.getByRole("link", { name: "New chat" }).click();
    const box = page.locator("#composer");
    await box.click();
    await box.pressSequentially("/");
    const list = page.getByRole("listbox", { name: "Saved prompts" });
    await list.waitFor();
    expect(await list.getByRole("option").allTextContents()).toEqual(["/briefBe brief", "/explainExplain simply"]);
    expect(await list.getByRole("option", { selected: true }).textContent()).toContain("/brief");
    await box.press("ArrowDown");
    expect(await list.getByRole("option", { selected: true }).textContent()).toContain("/explain");
    await box.press("Escape");
    await list.waitFor({ state: "detached" });
    expect(await box.inputValue()).toBe("/");

    // Filtering by what follows the slash; Enter chooses; the variable is asked for.
    await box.fill("");
    await box.pressSequentially("/exp");
    await list.getByRole("option").filter({ hasText: "/explain" }).waitFor();
    expect(await list.getByRole("option").count()).toBe(1);
    await box.press("Enter");
    const dialog = page.getByRole("dialog", { name: "Fill in “Explain simply”" });
    await dialog.getByLabel("topic").fill("tides");
    await dialog.getByLabel("topic").press("Enter");
    await dialog.waitFor({ state: "hidden" });
    await waitUntil("the filled prompt in the box", async () => (await box.inputValue()) === "Explain tides to a child.");

    // A prompt without variables goes straight in, after what was typed.
    await box.pressSequentially(" /bri");
    await list.getByRole("option").filter({ hasText: "/brief" }).waitFor();
    await box.press("Tab");
    await waitUntil(
      "the second prompt in the box",
      async () => (await box.inputValue()) === "Explain tides to a child. Answer in one sentence.",
    );
    await box.fill("");
  });

  step("a persona with an avatar signs its answers; chats go into folders", async () => {
    await openSettings("Personas");
    await page.getByRole("button", { name: "New persona" }).click();
    const form = page.getByRole("form", { name: "New persona" });
    await form.getByLabel("Name").fill("Owl tutor");
    await form.getByLabel("Avatar").fill("🦉");
    await form.getByLabel("System prompt").fill("Teach patiently.");
    await form.getByRole("button", { name: "Save" }).click();
    await page.getByTestId("persona").filter({ hasText: "Owl tutor" }).waitFor();

    await chat("What is a tide?", "The sea rising and falling.", "Tides lesson", "Owl tutor", "Library spare");
    const answer = page.locator("article[data-role=assistant]").last();
    expect(await textOf(answer.getByTestId("answer-persona"))).toBe("🦉 as Owl tutor");
    expect(await answer.getAttribute("aria-label")).toBe("Owl tutor");

    // A folder, and the chat moved into it: it leaves the date groups.
    const list = page.getByTestId("chat-list");
    await list.getByRole("button", { name: "New folder" }).click();
    await page.getByRole("dialog", { name: "New folder" }).getByLabel("Folder name").fill("School");
    await page.getByRole("dialog", { name: "New folder" }).getByRole("button", { name: "Save" }).click();
    const folder = list.getByTestId("chat-folder").filter({ hasText: "School" });
    await folder.waitFor();
    await list.getByRole("button", { name: "Chat options: Tides lesson" }).click();
    await page.getByRole("menuitem", { name: "Move to folder" }).click();
    const move = page.getByRole("dialog", { name: "Move to folder" });
    await move.getByLabel("Folders").selectOption({ label: "School" });
    await move.getByRole("button", { name: "Save" }).click();
    await folder.getByTestId("chat-title").filter({ hasText: "Tides lesson" }).waitFor();
    expect(await list.locator("section[aria-labelledby^=chat-group-]").getByText("Tides lesson").count()).toBe(0);
    // Folded and opened again from the keyboard.
    const toggle = folder.getByRole("button", { name: /^School/ });
    await toggle.focus();
    await toggle.press("Enter");
    await folder.getByTestId("chat-title").waitFor({ state: "detached" });
    await toggle.press("Enter");
    await folder.getByTestId("chat-title").filter({ hasText: "Tides lesson" }).waitFor();

    // Renamed, then deleted: the chat stays, back in the date groups.
    await list.getByRole("button", { name: "Folder options: School" }).click();
    await page.getByRole("menuitem", { name: "Rename folder" }).click();
    await page.getByRole("dialog", { name: "Rename folder" }).getByLabel("Folder name").fill("Lessons");
    await page.getByRole("dialog", { name: "Rename folder" }).getByRole("button", { name: "Save" }).click();
    const renamed = list.getByTestId("chat-folder").filter({ hasText: "Lessons" });
    await renamed.waitFor();
    await list.getByRole("button", { name: "Folder options: Lessons" }).click();
    await page.getByRole("menuitem", { name: "Delete folder" }).click();
    const confirm = page.getByRole("dialog", { name: "Delete folder" });
    expect(await textOf(confirm)).toContain("Its chats are kept");
    await confirm.getByRole("button", { name: "Delete" }).click();
    await renamed.waitFor({ state: "detached" });
    await list.locator("section[aria-labelledby^=chat-group-]").getByText("Tides lesson").waitFor();
  });

  step("archived chats have their own view, and come back from it", async () => {
    await chat("Spare question", "Spare answer.", "Spare chat", "General assistant", "Library main");
    const list = page.getByTestId("chat-list");
    await list.getByRole("button", { name: "Chat options: Spare chat" }).click();
    await page.getByRole("menuitem", { name: "Archive" }).click();
    await list.getByTestId("chat-title").filter({ hasText: "Spare chat" }).waitFor({ state: "detached" });
    await page.getByRole("link", { name: "Archived chats" }).click();
    await page.waitForURL((url) => url.pathname === "/archived");
    const archived = page.getByTestId("archived-chats");
    await archived.getByTestId("archived-chat-title").first().waitFor();
    expect(await archived.getByTestId("archived-chat-title").allTextContents()).toEqual(["Spare chat"]);
    await archived.getByRole("button", { name: "Unarchive: Spare chat" }).click();
    await page.getByText("No archived chats.").waitFor();
    await list.getByTestId("chat-title").filter({ hasText: "Spare chat" }).waitFor();
  });

  step("deleting a persona or a config that chats use says how many and what they use instead", async () => {
    await openSettings("Personas");
    const owl = page.getByTestId("persona").filter({ hasText: "Owl tutor" });
    await owl.getByTestId("persona-usage").filter({ hasText: "1 chats" }).waitFor();
    await owl.getByRole("button", { name: "Delete" }).click();
    const confirmPersona = page.getByRole("dialog");
    expect(await textOf(confirmPersona)).toContain("Used by 1 chats; they keep their instructions and will have no persona.");
    await confirmPersona.getByRole("button", { name: "Delete" }).click();
    await owl.waitFor({ state: "detached" });

    await openSettings("API configs");
    const spare = page.getByTestId("api-config").filter({ hasText: "Library spare" });
    await spare.getByTestId("config-usage").filter({ hasText: "1 chats" }).waitFor();
    await spare.getByRole("button", { name: "Delete" }).click();
    const confirmConfig = page.getByRole("dialog");
    expect(await textOf(confirmConfig)).toContain("Used by 1 chats; they will use “Library main” instead.");
    await confirmConfig.getByRole("button", { name: "Delete" }).click();
    await spare.waitFor({ state: "detached" });
    // Library main answered the chats naming no config; now it answers the moved one too.
    await waitUntil(
      "the main config counting every chat",
      async () =>
        (await textOf(page.getByTestId("api-config").filter({ hasText: "Library main" }).getByTestId("config-usage"))) === "2 chats",
    );

    // The old answer keeps the persona's name and avatar, and the config's name.
    await page.getByTestId("chat-list").getByTestId("chat-title").filter({ hasText: "Tides lesson" }).click();
    const answer = page.locator("article[data-role=assistant]").last();
    await answer.filter({ hasText: "The sea rising and falling." }).waitFor();
    expect(await textOf(answer.getByTestId("answer-persona"))).toBe("🦉 as Owl tutor");
    expect(await textOf(answer.getByTestId("answer-model"))).toBe("fake-model · Library spare");
  });

  step("in Chinese, the prompts panel and the archive speak Chinese", async () => {
    await page.getByRole("button", { name: "Account menu" }).click();
    await page.getByRole("menuitem", { name: /^Language/ }).click();
    await page.goto(`${parley.url}/settings/prompts`);
    await page.getByRole("heading", { name: "提示词" }).waitFor();
    await page.getByRole("link", { name: "已归档的对话" }).click();
    await page.getByText("没有已归档的对话。").waitFor();
  });
});

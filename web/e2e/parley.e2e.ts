// The whole UI in a real headless Chromium against the real stack (parley + the fake
// provider on random ports). The steps run in order and build on each other, as a person
// would use Parley: sign up, add a config, chat, reload, stop, regenerate, manage chats, sign
// out and in, reset a forgotten password; and a second user sees nothing of the first's.
import { afterAll, beforeAll, describe, expect } from "vitest";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { fromBinary, type DescMessage } from "@bufbuild/protobuf";
import { LoginResponseSchema, RefreshTokenResponseSchema, RegisterResponseSchema } from "../src/gen/parley/user/v1/user_pb";
import { startFakeProvider, startParley, type FakeProvider, type Parley } from "./stack";
import { launch, openTab, step, textOf, waitUntil, watchPage, type Tab } from "./browser";

const alice = {
  username: `alice_${Date.now().toString(36)}`,
  password: "correct horse battery",
  displayName: "Alice Example",
  email: `alice_${Date.now().toString(36)}@example.com`,
};
const bob = { username: `bob_${Date.now().toString(36)}`, password: "another long password" };

let parley: Parley;
let fake: FakeProvider;
let browser: Browser;
let tab: Tab;
let page: Page;
let firstChatId = "";

const markdownAnswer = [
  "# Result",
  "",
  "Here is some `inline code` and a function:",
  "",
  "```python",
  "def add(a, b):",
  "    return a + b",
  "```",
  "",
  "| Name | Value |",
  "|------|-------|",
  "| pi   | 3.14  |",
  "",
  "Math: \\(a^2 + b^2 = c^2\\), which costs $5 and $10.",
  "",
  "![a chart](https://images.example.com/chart.png?d=secret)",
  "",
  "[bad link](javascript:window.__xss=1) [data link](data:text/html,hi) and [good link](https://example.com/)",
  "",
  '<img src=x onerror="window.__xss=1"> done.',
].join("\n");

const longAnswer = Array.from({ length: 150 }, (_, i) => `word${i + 1}`).join(" ");

/** The first message of a gRPC-web response body (frames: a flag byte, a 4-byte length). */
function firstGrpcWebMessage(body: Buffer): Uint8Array | null {
  for (let at = 0; at + 5 <= body.length;) {
    const length = body.readUInt32BE(at + 1);
    if ((body[at] & 0x80) === 0) return body.subarray(at + 5, at + 5 + length);
    at += 5 + length;
  }
  return null;
}

const authSchemas: Record<string, DescMessage> = {
  Register: RegisterResponseSchema,
  Login: LoginResponseSchema,
  RefreshToken: RefreshTokenResponseSchema,
};

/** Every successful Register, Login and RefreshToken answer a page got, with the refresh
 * token its body carried (page scripts can read bodies; they must never hold one). */
const authAnswers: Promise<{ method: string; refreshToken: string } | null>[] = [];
function recordAuthAnswers(context: BrowserContext) {
  context.on("response", (res) => {
    const method = /\/parley\.user\.v1\.UserService\/(Register|Login|RefreshToken)$/.exec(new URL(res.url()).pathname)?.[1];
    if (!method) return;
    authAnswers.push(
      res.body().then(
        (body) => {
          const message = firstGrpcWebMessage(body);
          if (!message) return null; // An error answer: no message, no token.
          return { method, refreshToken: (fromBinary(authSchemas[method], message) as unknown as { refreshToken: string }).refreshToken };
        },
        () => null,
      ),
    );
  });
}

const assistants = () => page.locator("article[data-role=assistant]");
const lastAssistant = () => assistants().last();
const composer = () => page.locator("#composer");

/** The answer to the message just sent: the assistant article after the last user one. */
function newAnswer() {
  return page.locator("article[data-role=user]").last().locator("xpath=following-sibling::article[@data-role='assistant']").last();
}

async function send(text: string) {
  await composer().fill(text);
  await composer().press("Enter");
}

async function openUserMenu(item: string) {
  await page.getByRole("button", { name: "Account menu" }).click();
  await page.getByRole("menuitem", { name: item }).click();
}

async function signIn(p: Page, login: string, password: string) {
  await p.getByLabel("Username or email").fill(login);
  await p.getByLabel("Password", { exact: true }).fill(password);
  await p.getByRole("button", { name: "Sign in", exact: true }).click();
}

function normalise(text: string) {
  return text.replace(/\s+/g, " ").trim();
}

beforeAll(async () => {
  [fake, parley] = await Promise.all([startFakeProvider(), startParley()]);
  browser = await launch();
  tab = await openTab(browser, parley.url, { watch: recordAuthAnswers });
  page = tab.page;
  watchPage(page);
});

afterAll(async () => {
  await browser?.close();
  await parley?.stop();
  fake?.stop();
});

describe("Parley in a browser", () => {
  step("signs up", async () => {
    await page.getByRole("button", { name: "Sign up" }).click();
    await page.getByLabel("Username").fill(alice.username);
    await page.getByLabel("Password").fill(alice.password);
    await page.getByLabel("Display name (optional)").fill(alice.displayName);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.getByTestId("user-name").filter({ hasText: alice.displayName }).waitFor();
    // No config yet: the new-chat page says what to do first.
    await page.getByText("Add an API config first").waitFor();
  });

  step("adds an API config, picks the model from the provider's list and tests the connection", async () => {
    await openUserMenu("API configs");
    await page.getByRole("button", { name: "Add API config" }).click();
    await page.getByLabel("Name", { exact: true }).fill("Fake provider");
    await page.getByLabel("Base URL").fill(fake.baseUrl);
    await page.getByLabel("API key").fill(fake.apiKey);
    await page.getByLabel("Model").fill("");
    await page.getByRole("button", { name: "Load models" }).click();
    await page.getByText(/\d+ models/).waitFor();
    await page.getByLabel("Model").selectOption("fake-model");
    await page.getByRole("button", { name: "Test connection" }).click();
    await page
      .getByTestId("test-result")
      .filter({ hasText: /Connected in \d+ ms/ })
      .waitFor();
    await page.getByRole("button", { name: "Save" }).click();

    const card = page.getByTestId("api-config");
    await card.waitFor();
    expect(await textOf(card)).toContain("Fake provider");
    // Only the hint of the key is ever shown.
    const hint = await textOf(card.getByTestId("key-hint"));
    expect(hint).toContain(fake.apiKey.slice(-4));
    expect(hint).not.toContain(fake.apiKey);
    expect(await page.content()).not.toContain(fake.apiKey);

    // The stored config tests by id (the key stays on the server).
    await card.getByRole("button", { name: "Test connection" }).click();
    await card
      .getByTestId("test-result")
      .filter({ hasText: /Connected in \d+ ms/ })
      .waitFor();

    // Editing without a new key keeps the stored one; the provider's models load by themselves.
    await card.getByRole("button", { name: "Edit" }).click();
    await page.getByText(/\d+ models/).waitFor();
    expect(await page.getByLabel("Model").inputValue()).toBe("fake-model");
    // A new base URL needs the key again (the stored one never goes to another address).
    const keyField = page.getByLabel("API key");
    expect(await keyField.evaluate((el) => (el as HTMLInputElement).required)).toBe(false);
    await page.getByLabel("Base URL").fill(`${fake.baseUrl}/elsewhere`);
    await page.getByTestId("key-required").filter({ hasText: "enter the API key again" }).waitFor();
    expect(await keyField.evaluate((el) => (el as HTMLInputElement).required)).toBe(true);
    await page.getByRole("button", { name: "Save" }).click();
    expect(await keyField.evaluate((el) => (el as HTMLInputElement).validity.valueMissing)).toBe(true);
    await page.getByLabel("Base URL").fill(fake.baseUrl);
    await page.getByTestId("key-required").waitFor({ state: "detached" });
    expect(await keyField.evaluate((el) => (el as HTMLInputElement).required)).toBe(false);
    await page.getByLabel("Name", { exact: true }).fill("Fake provider (local)");
    await page.getByRole("button", { name: "Save" }).click();
    await card.filter({ hasText: "Fake provider (local)" }).waitFor();
    expect(await textOf(card.getByTestId("key-hint"))).toBe(hint);
    await card.getByRole("button", { name: "Test connection" }).click();
    await card
      .getByTestId("test-result")
      .filter({ hasText: /Connected in \d+ ms/ })
      .waitFor();
  });

  step("manages the user's own personas next to the built-in ones", async () => {
    await openUserMenu("Personas");
    const builtIn = await page.getByTestId("persona").count();
    expect(builtIn).toBeGreaterThan(0);
    // Built-in personas are read-only.
    expect(await page.getByTestId("persona").first().getByRole("button", { name: "Edit" }).count()).toBe(0);
    await page.getByRole("button", { name: "New persona" }).click();
    // The form of its own: the defaults for new chats below have a system prompt too.
    const newPersona = page.getByRole("form", { name: "New persona" });
    await newPersona.getByLabel("Name").fill("Pirate");
    await newPersona.getByLabel("Description").fill("Talks like a pirate");
    await newPersona.getByLabel("System prompt").fill("Answer like a pirate.");
    await newPersona.getByRole("button", { name: "Save" }).click();
    const pirate = page.getByTestId("persona").filter({ hasText: "Pirate" });
    await pirate.waitFor();
    await pirate.getByRole("button", { name: "Edit" }).click();
    const editPersona = page.getByRole("form", { name: "Edit" });
    await editPersona.getByLabel("Name").fill("Pirate captain");
    await editPersona.getByRole("button", { name: "Save" }).click();
    await page.getByTestId("persona").filter({ hasText: "Pirate captain" }).waitFor();

    await page.getByRole("link", { name: "New chat" }).click();
    expect(await page.getByLabel("Persona").locator("option").allTextContents()).toContain("Pirate captain");

    await openUserMenu("Personas");
    await page.getByTestId("persona").filter({ hasText: "Pirate captain" }).getByRole("button", { name: "Delete" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete" }).click();
    await page.getByTestId("persona").filter({ hasText: "Pirate captain" }).waitFor({ state: "detached" });
    expect(await page.getByTestId("persona").count()).toBe(builtIn);
  });

  step("starts a chat with a chosen persona; the answer streams in and renders as Markdown", async () => {
    await page.getByRole("link", { name: "New chat" }).click();
    const persona = page.getByLabel("Persona");
    const options = await persona.locator("option").allTextContents();
    expect(options.length).toBeGreaterThan(1);
    // The first persona is preselected; pick the second.
    expect(await persona.inputValue()).toBe(await persona.locator("option").first().getAttribute("value"));
    await persona.selectOption({ label: options[1] });
    expect(await page.getByLabel("API config").locator("option:checked").textContent()).toContain("Fake provider");
    await page.getByTestId("counterpart").filter({ hasText: options[1] }).waitFor();

    // The answer, then the title the chat-service asks for after the first exchange.
    await fake.script([{ text: markdownAnswer, chunk_delay_ms: 25 }, { text: "Markdown tour" }]);
    await send("Show me some Markdown");
    await page.waitForURL(/\/c\/\d+$/);
    firstChatId = page.url().split("/").pop() ?? "";

    await page.locator("article[data-role=user]").filter({ hasText: "Show me some Markdown" }).waitFor();
    // Streaming: the answer is visible before it is complete.
    await page.locator("article[data-role=assistant][data-status=streaming]").waitFor();
    await lastAssistant().locator("h1", { hasText: "Result" }).waitFor();
    await page.locator("article[data-role=assistant][data-status=complete]").waitFor();

    const answer = lastAssistant();
    expect(await textOf(answer.locator("pre code"))).toContain("def add(a, b):");
    // Highlighting and math are chunks fetched when an answer first needs them.
    await answer.locator("pre code .hljs-keyword").first().waitFor();
    expect(await answer.locator("table td").allTextContents()).toEqual(["pi", "3.14"]);
    await answer.locator(".katex").first().waitFor();
    expect(await answer.locator(".katex").count()).toBe(1);
    expect(await textOf(answer)).toContain("costs $5 and $10.");
    const hrefs = await answer.locator("a").evaluateAll((as) => as.map((a) => a.getAttribute("href")));
    expect(hrefs).toEqual(["https://example.com/"]);
    expect(await textOf(answer)).toContain("bad link");
    // A remote image waits for a click (its URL could carry the chat away).
    expect(await answer.locator("img").count()).toBe(0);
    expect(await textOf(answer.getByRole("button", { name: /a chart.*Load image from images\.example\.com/ }))).toContain("a chart");
    expect(await textOf(answer)).toContain('<img src=x onerror="window.__xss=1">');
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();

    // The code block's copy button puts the code on the clipboard.
    await answer.getByRole("button", { name: "Copy code" }).click();
    await answer.getByRole("button", { name: "Copy code" }).filter({ hasText: "Copied" }).waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toContain("return a + b");

    // The header names the counterpart and the model; the generated title reaches the list.
    expect(await textOf(page.getByTestId("counterpart"))).toBe(options[1]);
    expect(await textOf(page.getByTestId("header-model"))).toContain("fake-model");
    await page.getByTestId("chat-title").filter({ hasText: "Markdown tour" }).waitFor();
  });

  step("shows reasoning folded", async () => {
    await fake.script({ text: "The answer is 4.", reasoning: "Two plus two is four.", chunk_delay_ms: 5 });
    await send("What is 2+2?");
    await page.locator("article[data-role=assistant][data-status=complete]").nth(1).waitFor();
    const reasoning = lastAssistant().getByTestId("reasoning");
    expect(await reasoning.evaluate((d) => (d as HTMLDetailsElement).open)).toBe(false);
    await reasoning.locator("summary").click();
    expect(await textOf(reasoning)).toContain("Two plus two is four.");
    expect(await textOf(lastAssistant().getByTestId("assistant-content"))).toContain("The answer is 4.");
  });

  step("a reload in the middle of an answer re-attaches and the answer completes", async () => {
    await fake.script({ text: longAnswer, chunk_delay_ms: 60 });
    await send("Count for me");
    await waitUntil("the answer to start", async () => (await textOf(newAnswer())).includes("word5"));
    expect(await lastAssistant().getAttribute("data-status")).toBe("streaming");
    await page.reload();
    // Signed in again from the refresh cookie, the chat reopens and follows the generation.
    await page.locator("article[data-role=assistant][data-status=streaming]").waitFor();
    await waitUntil(
      "the re-attached answer to complete",
      async () => (await lastAssistant().getAttribute("data-status")) === "complete",
      30_000,
    );
    expect(normalise(await textOf(lastAssistant().getByTestId("assistant-content")))).toBe(longAnswer);
  });

  step("Enter sends, Shift+Enter adds a line and the box grows; the list follows the answer unless scrolled up", async () => {
    const box = composer();
    const oneLine = await box.evaluate((el) => el.clientHeight);
    await box.fill("");
    await box.pressSequentially("first line");
    await box.press("Shift+Enter");
    await box.pressSequentially("second line");
    await box.press("Shift+Enter");
    await box.pressSequentially("third line");
    expect(await box.inputValue()).toBe("first line\nsecond line\nthird line");
    expect(await box.evaluate((el) => el.clientHeight)).toBeGreaterThan(oneLine);

    const list = page.getByTestId("message-list");
    const atBottom = () => list.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight < 60);
    await fake.script({ text: Array.from({ length: 300 }, (_, i) => `token${i}`).join(" "), chunk_delay_ms: 20 });
    await box.press("Enter");
    await waitUntil("the answer to fill the screen", async () => (await textOf(newAnswer())).includes("token150"));
    expect(await atBottom()).toBe(true);
    // Scrolled up: the view stays where the reader is while the answer grows.
    await list.evaluate((el) => el.scrollTo({ top: 0 }));
    const jump = page.getByRole("button", { name: "Jump to latest" });
    await jump.waitFor();
    const grownFrom = (await textOf(newAnswer())).length;
    await waitUntil("more text", async () => (await textOf(newAnswer())).length > grownFrom + 50);
    expect(await list.evaluate((el) => el.scrollTop)).toBeLessThan(50);
    await jump.click();
    await waitUntil("the view back at the bottom", atBottom);
    await waitUntil("the answer to complete", async () => (await newAnswer().getAttribute("data-status")) === "complete", 20_000);
    expect(await atBottom()).toBe(true);
  });

  step("Stop keeps the partial answer, marked stopped", async () => {
    await fake.script({ text: longAnswer, chunk_delay_ms: 80 });
    await send("Count slowly");
    await page.locator("article[data-role=user]").last().filter({ hasText: "Count slowly" }).waitFor();
    await waitUntil("some text", async () => (await textOf(newAnswer())).includes("word3"));
    await page.getByRole("button", { name: "Stop" }).click();
    await waitUntil("the stopped answer", async () => (await lastAssistant().getAttribute("data-status")) === "stopped");
    const partial = normalise(await textOf(lastAssistant().getByTestId("assistant-content")));
    expect(partial.startsWith("word1 word2 word3")).toBe(true);
    expect(partial.length).toBeLessThan(longAnswer.length);
    await lastAssistant().getByTestId("status-stopped").waitFor();
    // The box is ready for the next message.
    await page.getByRole("button", { name: "Send" }).waitFor();

    // Stop pressed before the answer has even started (its id is not known yet) still stops
    // it: the request is held back in the browser until Stop was pressed.
    await fake.script({ text: "An answer nobody waited for.", first_chunk_delay_ms: 2000 });
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const sendMessage = "**/parley.chat.v1.MessageService/SendMessage";
    await page.route(sendMessage, async (route) => {
      await held;
      await route.continue();
    });
    try {
      await send("Stop before you start");
      await page.getByRole("button", { name: "Stop" }).click();
      await page.getByRole("button", { name: "Stopping…" }).waitFor();
      release();
      await waitUntil(
        "the answer stopped before its first word",
        async () => (await newAnswer().getAttribute("data-status")) === "stopped",
      );
      expect(normalise(await textOf(newAnswer().getByTestId("assistant-content")))).toBe("");
    } finally {
      release();
      await page.unroute(sendMessage);
    }
    await page.getByRole("button", { name: "Send" }).waitFor();
    await fake.clear();
  });

  step("Regenerate replaces the last answer", async () => {
    const before = await assistants().count();
    await fake.script({ text: "A regenerated answer.", chunk_delay_ms: 5 });
    await lastAssistant().getByRole("button", { name: "Regenerate" }).click();
    await waitUntil(
      "the regenerated answer",
      async () =>
        (await lastAssistant().getAttribute("data-status")) === "complete" &&
        normalise(await textOf(lastAssistant().getByTestId("assistant-content"))) === "A regenerated answer.",
    );
    // Shown in its place, not added (the stopped answer stays as its other version).
    await waitUntil("one answer fewer or the same", async () => (await assistants().count()) === before);
  });

  step("shows a provider error in place and keeps the conversation", async () => {
    await fake.script({ status: 401, message: "Incorrect API key provided: sk-wr***" });
    await send("This one fails");
    const failed = page.locator("article[data-role=assistant][data-status=failed]");
    await failed.waitFor();
    // Said as a sentence with what to do; the provider's own words are one click away.
    expect(await textOf(failed.getByTestId("failure-text"))).toContain("Your API key was refused by the provider: check it in Settings");
    expect(await textOf(failed.getByRole("alert"))).toContain("Incorrect API key provided");
    await page.locator("article[data-role=user]").filter({ hasText: "This one fails" }).waitFor();
    // The message was stored, so the box is free for the next one.
    expect(await composer().inputValue()).toBe("");
  });

  step("retries a failed answer; edits a question (a new version, answered anew) and deletes one", async () => {
    // Retry answers the same question again; it does not send the text a second time.
    const usersBefore = await page.locator("article[data-role=user]").count();
    await fake.script({ text: "A retried answer.", chunk_delay_ms: 5 });
    await page.locator("article[data-role=assistant][data-status=failed]").getByRole("button", { name: "Retry" }).click();
    await lastAssistant().getByTestId("assistant-content").filter({ hasText: "A retried answer." }).waitFor();
    await waitUntil("the retried answer final", async () => (await lastAssistant().getAttribute("data-status")) === "complete");
    expect(await page.locator("article[data-role=user]").count()).toBe(usersBefore);
    expect(await page.locator("article[data-role=assistant][data-status=failed]").count()).toBe(0);

    // Ctrl+Enter sends an edited question as a new version, answered anew (the old question
    // and its answer stay as version 1: branches.e2e covers switching).
    await fake.script({ text: "An answer to the edited question.", chunk_delay_ms: 5 });
    const question = page.locator("article[data-role=user]").last();
    await question.getByRole("button", { name: "Edit" }).click();
    await page.getByRole("textbox", { name: "Edit" }).fill("This one was edited");
    await page.getByRole("textbox", { name: "Edit" }).press("Control+Enter");
    await lastAssistant().getByTestId("assistant-content").filter({ hasText: "An answer to the edited question." }).waitFor();
    await waitUntil("the new answer final", async () => (await lastAssistant().getAttribute("data-status")) === "complete");
    const requests = (await fake.requests()) as { path: string; body?: { messages?: { role: string; content: string }[] } }[];
    const asked = requests.filter((r) => r.path.endsWith("/chat/completions")).at(-1)?.body?.messages ?? [];
    expect(asked.at(-1)).toMatchObject({ role: "user", content: "This one was edited" });
    expect(asked.some((m) => m.content === "This one fails")).toBe(false);

    await lastAssistant().getByRole("button", { name: "Delete" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete" }).click();
    await lastAssistant()
      .getByTestId("assistant-content")
      .filter({ hasText: "An answer to the edited question." })
      .waitFor({ state: "detached" });
    // The edit and the deletion are stored.
    await page.reload();
    await page.locator("article[data-role=user]").filter({ hasText: "This one was edited" }).waitFor();
    expect(normalise(await textOf(lastAssistant().getByTestId("assistant-content")))).toBe("A regenerated answer.");

    // The question left without an answer can be answered again, below it.
    await fake.script({ text: "The question answered again.", chunk_delay_ms: 5 });
    await page.locator("article[data-role=user]").last().getByRole("button", { name: "Answer this" }).click();
    await lastAssistant().getByTestId("assistant-content").filter({ hasText: "The question answered again." }).waitFor();
    await waitUntil("the answer final", async () => (await lastAssistant().getAttribute("data-status")) === "complete");
    const roles = await page.locator("article[data-role]").evaluateAll((els) => els.map((e) => e.getAttribute("data-role")));
    expect(roles.slice(-2)).toEqual(["user", "assistant"]);
  });

  step("keeps what was typed, per chat, across navigation and reloads", async () => {
    // The box grows with the draft and takes room from the list: the view stays on the newest text.
    const list = page.getByTestId("message-list");
    const oneLine = await composer().evaluate((el) => el.clientHeight);
    const atBottom = () => list.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight < 30);
    await waitUntil("the view at the bottom", atBottom);
    await composer().fill("a half-written thought\nthat goes on\nfor a few\nmore\nlines");
    await waitUntil("the box to grow", async () => (await composer().evaluate((el) => el.clientHeight)) > oneLine * 2);
    await waitUntil("the view still at the bottom", atBottom);
    await page.getByRole("link", { name: "New chat" }).click();
    await composer().fill("an idea for another chat");
    await page
      .getByTestId("chat-list")
      .getByRole("link", { name: /Markdown tour/ })
      .click();
    await waitUntil("the chat's own draft", async () => (await composer().inputValue()).startsWith("a half-written thought\n"));
    // With a mouse, the box of the chat just opened takes focus.
    await waitUntil("the box focused", () => page.evaluate(() => document.activeElement?.id === "composer"));
    await page.reload();
    await waitUntil("the draft after a reload", async () => (await composer().inputValue()).startsWith("a half-written thought\n"));
    await page.getByRole("link", { name: "New chat" }).click();
    expect(await composer().inputValue()).toBe("an idea for another chat");
    await composer().fill("");
    await page
      .getByTestId("chat-list")
      .getByRole("link", { name: /Markdown tour/ })
      .click();
    await waitUntil("the chat's draft again", async () => (await composer().inputValue()).startsWith("a half-written thought\n"));
    await composer().fill("");
  });

  step("renames, pins and deletes chats", async () => {
    const list = page.getByTestId("chat-list");
    await list.getByRole("button", { name: "Chat options: Markdown tour" }).click();
    await page.getByRole("menuitem", { name: "Rename" }).click();
    await page.getByRole("dialog").getByLabel("Name").fill("Renamed chat");
    await page.getByRole("dialog").getByRole("button", { name: "Save" }).click();
    await list.getByTestId("chat-title").filter({ hasText: "Renamed chat" }).waitFor();

    // A second chat, to delete. Its first message never reaches the server at first: the
    // empty chat it was to open goes away, and the text and the error come back here.
    await page.getByRole("link", { name: "New chat" }).click();
    const sendMessage = "**/parley.chat.v1.MessageService/SendMessage";
    await page.route(sendMessage, (route) => route.abort(), { times: 1 });
    await send("Something to delete");
    await page.getByTestId("new-chat-error").waitFor();
    await page.waitForURL((url) => url.pathname === "/");
    expect(await composer().inputValue()).toBe("Something to delete");
    expect(await list.locator("li").count()).toBe(1);
    await page.unroute(sendMessage);

    const throwaway = Array.from({ length: 40 }, (_, i) => `Line ${i + 1} of a long throwaway answer.`).join("\n\n");
    await fake.script([{ text: throwaway, chunk_delay_ms: 3, first_chunk_delay_ms: 400 }, { text: "Throwaway chat" }]);
    await composer().press("Enter");
    await page.locator("article[data-role=user]").filter({ hasText: "Something to delete" }).waitFor();
    // Wheeling up over a chat too short to scroll does not stop the view following the answer.
    const messages = page.getByTestId("message-list");
    await messages.hover();
    await page.mouse.wheel(0, -400);
    await page.locator("article[data-role=assistant][data-status=complete]").waitFor();
    expect(await messages.evaluate((el) => el.scrollHeight > el.clientHeight + 200)).toBe(true);
    await waitUntil("the view at the end of the answer", () =>
      messages.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight < 60),
    );
    await list.getByTestId("chat-title").filter({ hasText: "Throwaway chat" }).waitFor();
    expect(await list.locator("li").count()).toBe(2);

    // The stream breaks after the server stored the message but before the page heard so:
    // the text is not put back into the box to be sent a second time.
    await fake.script({ text: "Stored all the same.", chunk_delay_ms: 1 });
    await page.route(
      sendMessage,
      async (route) => {
        await route.fetch();
        await route.abort();
      },
      { times: 1 },
    );
    await send("Sent once only");
    await lastAssistant().getByTestId("assistant-content").filter({ hasText: "Stored all the same." }).waitFor();
    expect(await page.locator("article[data-role=user]").filter({ hasText: "Sent once only" }).count()).toBe(1);
    expect(await composer().inputValue()).toBe("");
    expect(await page.getByTestId("chat-error").count()).toBe(0);
    await page.unroute(sendMessage);

    // A chat action that fails says so in a notice.
    const updateSession = "**/parley.chat.v1.SessionService/UpdateSession";
    await page.route(updateSession, (route) => route.abort(), { times: 1 });
    await list.getByRole("button", { name: "Chat options: Renamed chat" }).click();
    await page.getByRole("menuitem", { name: "Pin" }).click();
    const notice = page.getByTestId("toast").filter({ hasText: "Could not change the chat" });
    await notice.waitFor();
    await notice.getByRole("button", { name: "Dismiss" }).click();
    await notice.waitFor({ state: "detached" });
    await page.unroute(updateSession);

    await list.getByRole("button", { name: "Chat options: Renamed chat" }).click();
    await page.getByRole("menuitem", { name: "Pin" }).click();
    await waitUntil("the pinned chat first", async () => (await textOf(list.locator("li").first())).includes("Renamed chat"));

    // Archived chats leave the list for the archive's own view, and come back from it.
    await list.getByRole("button", { name: "Chat options: Throwaway chat" }).click();
    await page.getByRole("menuitem", { name: "Archive" }).click();
    await list.getByTestId("chat-title").filter({ hasText: "Throwaway chat" }).waitFor({ state: "detached" });
    await page.getByRole("link", { name: "Archived chats" }).click();
    await page.getByRole("button", { name: "Unarchive: Throwaway chat" }).click();
    await list.getByTestId("chat-title").filter({ hasText: "Throwaway chat" }).click();

    await list.getByRole("button", { name: "Chat options: Throwaway chat" }).click();
    await page.getByRole("menuitem", { name: "Delete" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete" }).click();
    await list.getByTestId("chat-title").filter({ hasText: "Throwaway chat" }).waitFor({ state: "detached" });
    // Deleting the open chat leaves it.
    await page.waitForURL((url) => url.pathname === "/");
    expect(await list.locator("li").count()).toBe(1);
  });

  step("an answer cut at the maximum size says so under it", async () => {
    // 300 KB, past the 256 KB a stored answer may hold.
    const paragraph = `${"lorem ipsum dolor sit amet ".repeat(40)}\n\n`;
    await fake.script([{ text: paragraph.repeat(280), chunk_size: 16384, chunk_delay_ms: 0 }, { text: "Cut answer" }]);
    await page.getByRole("link", { name: "New chat" }).click();
    await send("Write a very long text");
    await page.waitForURL(/\/c\/\d+$/);
    const note = page.getByTestId("status-note");
    await note.waitFor({ timeout: 30_000 });
    expect(await textOf(note)).toMatch(/^The answer was cut short: the answer reached the maximum size of .+ and was cut off here$/);
    expect(await lastAssistant().getAttribute("data-status")).toBe("complete");
    // Stored with its note: a reload shows it again.
    await page.reload();
    await page.getByTestId("status-note").waitFor({ timeout: 30_000 });
    await fake.clear();
  });

  step("a message over the rate limit says so, with the wait", async () => {
    const limited = await startParley({ messagesPerMinute: 1 });
    const other = await openTab(browser, limited.url);
    watchPage(other.page);
    try {
      const p = other.page;
      await p.getByRole("button", { name: "Sign up" }).click();
      await p.getByLabel("Username").fill("limited_user");
      await p.getByLabel("Password").fill("a long enough password");
      await p.getByRole("button", { name: "Create account" }).click();
      await p.getByTestId("user-name").waitFor();
      await p.goto(`${limited.url}/settings/api-configs`);
      await p.getByRole("button", { name: "Add API config" }).click();
      await p.getByLabel("Name", { exact: true }).fill("Fake");
      await p.getByLabel("Base URL").fill(fake.baseUrl);
      await p.getByLabel("API key").fill(fake.apiKey);
      await p.getByLabel("Model").fill("fake-model");
      await p.getByRole("button", { name: "Save" }).click();
      await p.getByTestId("api-config").waitFor();
      await p.getByRole("link", { name: "New chat" }).click();
      await fake.script([{ text: "The one answer this minute.", chunk_delay_ms: 5 }, { text: "Limited" }]);
      await p.locator("#composer").fill("First");
      await p.locator("#composer").press("Enter");
      await p.locator("article[data-role=assistant][data-status=complete]").waitFor();
      await p.locator("#composer").fill("Second, too soon");
      await p.locator("#composer").press("Enter");
      const error = p.getByTestId("chat-error");
      await error.waitFor();
      expect(await textOf(error)).toMatch(/^Too many requests in a short time\. Try again in \d+ s\./);
      // Nothing lost: the text is back in the box.
      await waitUntil("the text back in the box", async () => (await p.locator("#composer").inputValue()) === "Second, too soon");
    } finally {
      watchPage(page);
      await other.context.close();
      await limited.stop();
      await fake.clear();
    }
  });

  step("signs out and back in, in every tab of the browser; the history is there", async () => {
    const second = await tab.context.newPage();
    try {
      await second.goto(parley.url);
      await second.getByTestId("user-name").waitFor();
      // Unsent text does not outlive a sign-out on this device.
      await composer().fill("words nobody else should find");
      await openUserMenu("Sign out");
      await page.getByRole("button", { name: "Sign in", exact: true }).waitFor();
      // The other tab follows, and says why.
      await second.getByTestId("auth-notice").filter({ hasText: "You signed out in another tab." }).waitFor();
      // The refresh cookie is gone: a reload stays signed out.
      await page.reload();
      await page.getByRole("button", { name: "Sign in", exact: true }).waitFor();
      await signIn(page, alice.username, alice.password);
      await second.getByTestId("user-name").waitFor();
      await page.getByRole("button", { name: "Send" }).waitFor();
      expect(await composer().inputValue()).toBe("");
    } finally {
      await second.close();
    }
    const list = page.getByTestId("chat-list");
    await list.getByRole("link", { name: /Renamed chat/ }).click();
    await page.locator("article[data-role=user]").filter({ hasText: "Show me some Markdown" }).waitFor();
    await page.locator("article[data-role=user]").filter({ hasText: "This one was edited" }).waitFor();
    await lastAssistant().getByTestId("assistant-content").filter({ hasText: "The question answered again." }).waitFor();
    expect(await page.locator("article[data-role=assistant] table").count()).toBe(1);
  });

  step("edits the profile and changes the password, using the keyboard for the menu", async () => {
    const menuButton = page.getByRole("button", { name: "Account menu" });
    await menuButton.focus();
    await page.keyboard.press("Enter");
    await page.getByRole("menuitem", { name: "Profile" }).waitFor();
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Profile");
    await page.keyboard.press("Enter");
    // The profile says when the account was made and last signed in.
    await page
      .getByTestId("profile-times")
      .filter({ hasText: /Member since .+ · Last sign-in (?!never)/ })
      .waitFor();
    await page.getByLabel("Display name").fill("Alice Renamed");
    // A new email address asks for the current password; a wrong one changes nothing.
    expect(await page.getByLabel("Current password").count()).toBe(0);
    await page.getByLabel("Email").fill(alice.email);
    await page.getByText("Changing the email needs your current password.").waitFor();
    await page.getByLabel("Current password").fill("not the password");
    await page.getByRole("button", { name: "Save" }).click();
    await page.getByRole("alert").waitFor();
    await page.getByLabel("Current password").fill(alice.password);
    await page.getByRole("button", { name: "Save" }).click();
    await page.getByRole("status").filter({ hasText: "Saved" }).waitFor();
    await page.getByTestId("user-name").filter({ hasText: "Alice Renamed" }).waitFor();
    expect(await page.getByLabel("Current password").count()).toBe(0);

    // The new address is unverified until the code sent there is entered.
    await page.getByTestId("email-state").filter({ hasText: "Not verified" }).waitFor();
    await page.getByRole("button", { name: "Send verification code" }).click();
    await page.getByText(`A code was sent to ${alice.email}`).waitFor();
    await page.getByLabel("Code").fill("000000");
    await page.getByRole("button", { name: "Verify email" }).click();
    await page
      .getByRole("alert")
      .filter({ hasText: /wrong|invalid|expired/i })
      .waitFor();
    await page.getByLabel("Code").fill(await parley.codeFor(alice.username, "email_verify"));
    await page.getByRole("button", { name: "Verify email" }).click();
    await page.getByTestId("email-state").filter({ hasText: "Verified" }).waitFor();
    expect(await page.getByRole("button", { name: "Send verification code" }).count()).toBe(0);

    await page.getByRole("link", { name: "Change password" }).click();
    await page.getByLabel("Current password").fill(alice.password);
    await page.getByLabel("New password", { exact: true }).fill("a changed password");
    await page.getByLabel("Confirm new password").fill("a changed password");
    await page.getByRole("button", { name: "Change password" }).click();
    await page.getByRole("status").filter({ hasText: "Password changed" }).waitFor();
    alice.password = "a changed password";
    // This browser stays signed in (its own session survives the change).
    await page.reload();
    await page.getByTestId("user-name").filter({ hasText: "Alice Renamed" }).waitFor();

    // Parley out of reach at page load is not "signed out": the page waits and retries.
    const refreshToken = "**/parley.user.v1.UserService/RefreshToken";
    await page.route(refreshToken, (route) => route.abort());
    await page.reload();
    await page.getByText("Can't reach Parley").waitFor();
    expect(await page.getByRole("button", { name: "Sign in", exact: true }).count()).toBe(0);
    await page.unroute(refreshToken);
    await page.getByRole("button", { name: "Retry now" }).click();
    await page.getByTestId("user-name").filter({ hasText: "Alice Renamed" }).waitFor();
  });

  step("a second user sees none of the first user's chats or configs", async () => {
    const other = await openTab(browser, parley.url);
    watchPage(other.page);
    try {
      const p = other.page;
      await p.getByRole("button", { name: "Sign up" }).click();
      await p.getByLabel("Username").fill(bob.username);
      await p.getByLabel("Password").fill(bob.password);
      await p.getByRole("button", { name: "Create account" }).click();
      await p.getByTestId("user-name").filter({ hasText: bob.username }).waitFor();
      await p.getByText("No chats yet.").waitFor();
      await p.getByText("Add an API config first").waitFor();
      // Alice's chat by its address: the same answer as a chat that does not exist.
      await p.goto(`${parley.url}/c/${firstChatId}`);
      await p.getByText("This chat does not exist.").waitFor();
      expect(await p.locator("article").count()).toBe(0);
      await p.goto(`${parley.url}/settings/api-configs`);
      await p.getByText("No API configs yet.").waitFor();
    } finally {
      watchPage(page);
      await other.context.close();
    }
  });

  step("the first account administers: disables, re-enables and deletes another account", async () => {
    const carol = { username: `carol_${Date.now().toString(36)}`, password: "carol's long password" };
    const other = await openTab(browser, parley.url);
    try {
      const p = other.page;
      await p.getByRole("button", { name: "Sign up" }).click();
      await p.getByLabel("Username").fill(carol.username);
      await p.getByLabel("Password").fill(carol.password);
      await p.getByRole("button", { name: "Create account" }).click();
      await p.getByTestId("user-name").filter({ hasText: carol.username }).waitFor();
      // Not an administrator: no such menu item, and the address shows nothing of it.
      await p.getByRole("button", { name: "Account menu" }).click();
      await p.getByRole("menuitem", { name: "Profile" }).waitFor();
      expect(await p.getByRole("menuitem", { name: "Administration" }).count()).toBe(0);
      await p.keyboard.press("Escape");
      await p.goto(`${parley.url}/admin`);
      await p.getByText("Only administrators can open this page.").waitFor();
      expect(await p.getByTestId("account").count()).toBe(0);

      // Alice, the first account, is an administrator.
      await openUserMenu("Administration");
      await page.getByRole("heading", { name: "Accounts" }).waitFor();
      const me = page.getByTestId("account").filter({ hasText: alice.username });
      await me.waitFor();
      expect(await textOf(me.getByTestId("account-role"))).toBe("Administrator");
      // Her own account has no buttons (the server refuses them too).
      expect(await me.getByRole("button").count()).toBe(0);

      await page.getByRole("searchbox", { name: "Search accounts" }).fill(carol.username.toUpperCase());
      await page.getByRole("button", { name: "Search", exact: true }).click();
      const row = page.getByTestId("account").filter({ hasText: carol.username });
      await row.waitFor();
      await waitUntil("only carol listed", async () => (await page.getByTestId("account").count()) === 1);
      expect(await textOf(row.getByTestId("account-status"))).toBe("Active");
      expect(await textOf(row.getByTestId("account-role"))).toBe("User");
      expect(await textOf(row.getByTestId("account-last-sign-in"))).not.toContain("never");
      expect(await textOf(row.getByTestId("account-sign-in"))).toContain("Username");

      await row.getByRole("button", { name: `Disable: ${carol.username}` }).click();
      await row.getByTestId("account-status").filter({ hasText: "Disabled" }).waitFor();
      await page.getByRole("status").filter({ hasText: "is disabled" }).waitFor();
      // Focus moved to the button that took the pressed one's place.
      await waitUntil("focus on Re-enable", async () =>
        page.evaluate(() => document.activeElement?.getAttribute("aria-label")?.startsWith("Re-enable:") ?? false),
      );
      // The status filter finds it among the disabled ones only.
      await page.getByRole("searchbox", { name: "Search accounts" }).fill("");
      await page.getByLabel("Status").selectOption({ label: "Disabled" });
      await page.getByRole("button", { name: "Search", exact: true }).click();
      await waitUntil("only disabled accounts", async () => {
        const statuses = await page.getByTestId("account-status").allTextContents();
        return statuses.length === 1 && statuses[0] === "Disabled";
      });

      // Her next sign-in fails, and says why.
      await p.goto(parley.url);
      await signIn(p, carol.username, carol.password);
      await p.getByRole("alert").filter({ hasText: "This account has been disabled by an administrator." }).waitFor();

      await row.getByRole("button", { name: `Re-enable: ${carol.username}` }).click();
      await page.getByRole("status").filter({ hasText: "can sign in again" }).waitFor();
      await signIn(p, carol.username, carol.password);
      await p.getByTestId("user-name").filter({ hasText: carol.username }).waitFor();

      await page.getByLabel("Status").selectOption({ label: "All" });
      await page.getByRole("searchbox", { name: "Search accounts" }).fill(carol.username);
      await page.getByRole("button", { name: "Search", exact: true }).click();
      await row.getByTestId("account-status").filter({ hasText: "Active" }).waitFor();
      // Deleting asks first; Cancel keeps the account.
      await row.getByRole("button", { name: `Delete: ${carol.username}` }).click();
      const dialog = page.getByRole("dialog", { name: "Delete account" });
      expect(await textOf(dialog)).toContain(carol.username);
      await dialog.getByRole("button", { name: "Cancel" }).click();
      await dialog.waitFor({ state: "hidden" });
      expect(await row.count()).toBe(1);
      await row.getByRole("button", { name: `Delete: ${carol.username}` }).click();
      await dialog.getByRole("button", { name: "Delete" }).click();
      await page.getByRole("status").filter({ hasText: "was deleted" }).waitFor();
      await row.waitFor({ state: "detached" });
      await page.getByText("No accounts match.").waitFor();

      // Gone: signing in is refused like an unknown account.
      await p.evaluate(() => localStorage.clear());
      await p.context().clearCookies();
      await p.goto(parley.url);
      await signIn(p, carol.username, carol.password);
      await p.getByRole("alert").filter({ hasText: "Wrong username, email or password." }).waitFor();
    } finally {
      await other.context.close();
    }
  });

  step("an administrator overrides an account's quota; its user sees the new limit and is held to it", async () => {
    const dave = { username: `dave_${Date.now().toString(36)}`, password: "dave's long password" };
    const other = await openTab(browser, parley.url);
    try {
      const p = other.page;
      await p.getByRole("button", { name: "Sign up" }).click();
      await p.getByLabel("Username").fill(dave.username);
      await p.getByLabel("Password").fill(dave.password);
      await p.getByRole("button", { name: "Create account" }).click();
      await p.getByTestId("user-name").filter({ hasText: dave.username }).waitFor();
      await p.goto(`${parley.url}/settings/usage`);
      await p.getByTestId("quota-personas").filter({ hasText: "0 of 50" }).waitFor();

      await openUserMenu("Administration");
      await page.getByRole("searchbox", { name: "Search accounts" }).fill(dave.username);
      await page.getByRole("button", { name: "Search", exact: true }).click();
      const usage = page.getByTestId("account-usage-row").filter({ hasText: dave.username });
      await usage.waitFor();
      await usage.getByRole("button", { name: `Edit quotas: ${dave.username}` }).click();
      const dialog = page.getByRole("dialog", { name: `Quotas of ${dave.username}` });
      await dialog.getByLabel("Own personas").fill("1");
      await dialog.getByRole("button", { name: "Save" }).click();
      await page
        .getByRole("status")
        .filter({ hasText: `Quotas of ${dave.username} saved.` })
        .waitFor();
      await usage.getByTestId("usage-personas").filter({ hasText: "0 of 1" }).waitFor();

      await p.reload();
      const personas = p.getByTestId("quota-personas").filter({ hasText: "0 of 1" });
      await personas.waitFor();
      expect(await textOf(personas)).toContain("set for your account");

      // Held to it: the second persona is refused, and the refusal says why.
      await p.goto(`${parley.url}/settings/personas`);
      for (const name of ["First", "Second"]) {
        await p.getByRole("button", { name: "New persona" }).click();
        const form = p.getByRole("form", { name: "New persona" });
        await form.getByLabel("Name", { exact: true }).fill(name);
        await form.getByLabel("System prompt", { exact: true }).fill("Be brief.");
        await form.getByRole("button", { name: "Save" }).click();
      }
      await p.getByRole("alert").filter({ hasText: "You have reached your limit of 1 personas." }).waitFor();
    } finally {
      await other.context.close();
    }
  });

  step("an administrator shares a connection; another user chats through it and sees its tokens and cost", async () => {
    const dave = { username: `dave_${Date.now().toString(36)}`, password: "dave's long password" };
    await openUserMenu("Administration");
    const section = page.locator('section[aria-labelledby="shared-title"]');
    await section.getByRole("heading", { name: "Shared connections" }).waitFor();
    const create = section.locator("details");
    await create.locator("summary").click();
    await create.getByLabel("Name", { exact: true }).fill("Team provider");
    await create.getByLabel("Base URL").fill(fake.baseUrl);
    await create.getByLabel("API key").fill(fake.apiKey);
    await create.getByLabel("Model").fill("fake-model");
    await create.getByLabel("Prompt price").fill("1");
    await create.getByLabel("Completion price").fill("2");
    await create.getByLabel("Currency (e.g. USD)").fill("USD");
    await create.getByRole("button", { name: "Add shared connection" }).click();
    const card = section.locator('[data-shared-connection="Team provider"]');
    await card.waitFor();
    expect(await textOf(card)).toContain("everyone");
    expect(await page.content()).not.toContain(fake.apiKey);

    const other = await openTab(browser, parley.url);
    try {
      const p = other.page;
      await p.getByRole("button", { name: "Sign up" }).click();
      await p.getByLabel("Username").fill(dave.username);
      await p.getByLabel("Password").fill(dave.password);
      await p.getByRole("button", { name: "Create account" }).click();
      await p.getByTestId("user-name").filter({ hasText: dave.username }).waitFor();
      // No config of his own, and yet a chat can start: with the shared connection.
      const picker = p.getByLabel("API config");
      await waitUntil("the shared connection offered", async () =>
        (await picker.locator("option").allTextContents()).some((o) => o.includes("Team provider") && o.includes("(shared)")),
      );
      await fake.script([{ text: "Shared hello to you" }, { text: "Shared title" }]);
      await p.locator("#composer").fill("hello through the team");
      await p.locator("#composer").press("Enter");
      await p.locator("article[data-role=assistant][data-status=complete]").filter({ hasText: "Shared hello to you" }).waitFor();
      expect(await p.content()).not.toContain(fake.apiKey);
      expect(await p.content()).not.toContain(fake.baseUrl);

      // His tokens and their cost, per model.
      await p.goto(`${parley.url}/settings/usage`);
      const table = p.getByTestId("usage-table").first();
      await table.waitFor();
      const row = normalise(await textOf(table.locator("tbody tr").first()));
      expect(row).toContain("fake-model");
      expect(row).toMatch(/\$0\.\d*[1-9]/);
    } finally {
      watchPage(page);
      await other.context.close();
    }

    // The administrator sees it per user.
    const perUser = page.locator('section[aria-labelledby="usage-per-user-title"]');
    await page.reload();
    await perUser.getByTestId("usage-table").filter({ hasText: dave.username }).waitFor();
  });

  step("sign-up needing approval, then an invite code, set from the admin page", async () => {
    const suffix = Date.now().toString(36);
    const erin = { username: `erin_${suffix}`, password: "erin's long password" };
    const frank = { username: `frank_${suffix}`, password: "frank's long password" };
    const signUp = async (p: Page, who: { username: string; password: string }) => {
      await p.getByLabel("Username").fill(who.username);
      await p.getByLabel("Password").fill(who.password);
      await p.getByRole("button", { name: "Create account" }).click();
    };
    const savePolicy = async (name: RegExp) => {
      await page.getByRole("radio", { name }).check();
      await page.getByRole("button", { name: "Save sign-up policy" }).click();
      await page.getByRole("status").filter({ hasText: "Saved" }).waitFor();
    };
    await page.goto(`${parley.url}/admin`);
    await page.getByRole("heading", { name: "Sign-up" }).waitFor();
    expect(await page.getByRole("radio", { name: /^Open/ }).isChecked()).toBe(true);
    await savePolicy(/^Approval/);

    const other = await openTab(browser, parley.url);
    try {
      const p = other.page;
      await p.getByRole("button", { name: "Sign up" }).click();
      await p.getByTestId("signup-policy").filter({ hasText: "wait for an administrator's approval" }).waitFor();
      await signUp(p, erin);
      await p.getByTestId("auth-notice").filter({ hasText: "waiting for approval" }).waitFor();
      await signIn(p, erin.username, erin.password);
      await p.getByRole("alert").filter({ hasText: "This account is waiting for approval by an administrator." }).waitFor();

      await page.getByLabel("Status").selectOption({ label: "Awaiting approval" });
      await page.getByRole("button", { name: "Search", exact: true }).click();
      const row = page.getByTestId("account").filter({ hasText: erin.username });
      await row.getByTestId("account-status").filter({ hasText: "Awaiting approval" }).waitFor();
      await row.getByRole("button", { name: `Approve: ${erin.username}` }).click();
      await page.getByRole("status").filter({ hasText: "is approved" }).waitFor();
      await signIn(p, erin.username, erin.password);
      await p.getByTestId("user-name").filter({ hasText: erin.username }).waitFor();
    } finally {
      await other.context.close();
    }

    // Invite only: a code with one use, copied from the page.
    await savePolicy(/^Invite only/);
    await page.getByLabel("Uses").fill("1");
    await page.getByLabel("Valid for (days)").fill("3");
    await page.getByRole("button", { name: "Create invite code" }).click();
    const code = (await textOf(page.getByTestId("new-invite-code"))).trim();
    expect(code.length).toBeGreaterThan(5);
    await page.getByRole("status").filter({ hasText: "New invite code" }).getByRole("button", { name: "Copy" }).click();
    await page.getByRole("button", { name: "Copied" }).waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(code);
    const invite = page.getByTestId("invite").first();
    expect(await textOf(invite)).toContain("0 of 1 used");

    const third = await openTab(browser, parley.url);
    try {
      const p = third.page;
      await p.getByRole("button", { name: "Sign up" }).click();
      await p.getByLabel("Invite code").fill("not-a-code");
      await signUp(p, frank);
      await p.getByRole("alert").waitFor();
      await p.getByLabel("Invite code").fill(code);
      await p.getByRole("button", { name: "Create account" }).click();
      await p.getByTestId("user-name").filter({ hasText: frank.username }).waitFor();
    } finally {
      await third.context.close();
    }
    await page.reload();
    await invite.getByTestId("invite-state").filter({ hasText: "Used up" }).waitFor();
    expect(await textOf(invite)).toContain("1 of 1 used");

    // A second code, revoked: the list says so and offers no second revoke.
    await page.getByRole("button", { name: "Create invite code" }).click();
    await waitUntil("two invites", async () => (await page.getByTestId("invite").count()) === 2);
    const newest = page.getByTestId("invite").first();
    await newest.getByRole("button", { name: /^Revoke/ }).click();
    await newest.getByTestId("invite-state").filter({ hasText: "Revoked" }).waitFor();
    expect(await newest.getByRole("button", { name: /^Revoke/ }).count()).toBe(0);

    await savePolicy(/^Open/);
  });

  step("sign-up asks for consent to the operator's terms, with a link to them", async () => {
    const withTerms = await startParley({ termsUrl: "https://terms.example.com/parley" });
    const other = await openTab(browser, withTerms.url);
    watchPage(other.page);
    try {
      const p = other.page;
      await p.getByRole("button", { name: "Sign up" }).click();
      const consent = p.getByRole("checkbox", { name: /I accept the terms of use/ });
      await consent.waitFor();
      expect(await p.getByRole("link", { name: /terms of use/ }).getAttribute("href")).toBe("https://terms.example.com/parley");
      await p.getByLabel("Username").fill("terms_reader");
      await p.getByLabel("Password").fill("a long enough password");
      await p.getByRole("button", { name: "Create account" }).click();
      // Not accepted: the browser keeps the form (the server would refuse it too).
      expect(await consent.evaluate((el) => (el as HTMLInputElement).validity.valueMissing)).toBe(true);
      await consent.check();
      await p.getByRole("button", { name: "Create account" }).click();
      await p.getByTestId("user-name").filter({ hasText: "terms_reader" }).waitFor();
    } finally {
      watchPage(page);
      await other.context.close();
      await withTerms.stop();
    }
  });

  step("deletes one's own account after a warning and the password, and is signed out", async () => {
    const dave = { username: `dave_${Date.now().toString(36)}`, password: "dave's long password" };
    const other = await openTab(browser, parley.url);
    watchPage(other.page);
    try {
      const p = other.page;
      await p.getByRole("button", { name: "Sign up" }).click();
      await p.getByLabel("Username").fill(dave.username);
      await p.getByLabel("Password").fill(dave.password);
      await p.getByRole("button", { name: "Create account" }).click();
      await p.getByTestId("user-name").filter({ hasText: dave.username }).waitFor();
      await p.goto(`${parley.url}/settings/profile`);
      await p.getByRole("button", { name: "Delete my account…" }).click();
      const dialog = p.getByRole("dialog", { name: "Delete my account" });
      const warning = await textOf(dialog);
      expect(warning).toContain(`@${dave.username}`);
      expect(warning).toMatch(/chats and messages.*personas.*API configs/);
      // The password field has focus; a wrong password deletes nothing.
      expect(await p.evaluate(() => document.activeElement?.id)).toBe("delete-account-password");
      await dialog.getByLabel("Password").fill("not dave's password");
      await dialog.getByRole("button", { name: "Delete my account forever" }).click();
      await dialog.getByRole("alert").waitFor();
      await dialog.getByLabel("Password").fill(dave.password);
      await dialog.getByRole("button", { name: "Delete my account forever" }).click();
      await p.getByTestId("auth-notice").filter({ hasText: "Your account was deleted." }).waitFor();
      await p.reload();
      await signIn(p, dave.username, dave.password);
      await p.getByRole("alert").filter({ hasText: "Wrong username, email or password." }).waitFor();
    } finally {
      watchPage(page);
      await other.context.close();
    }
  });

  step("resets a forgotten password with the code from the log", async () => {
    const other = await openTab(browser, parley.url);
    watchPage(other.page);
    try {
      const p = other.page;
      // By the verified email address: the code goes there.
      await p.getByRole("button", { name: "Forgot password?" }).click();
      await p.getByLabel("Username or email").fill(alice.email);
      await p.getByRole("button", { name: "Send code" }).click();
      await p.getByLabel("Code").waitFor();
      const code = await parley.codeFor(alice.username, "password_reset");
      // Another code right away: the server says when, and the page counts down.
      await p.getByRole("button", { name: "Resend code" }).click();
      await p
        .getByTestId("resend-wait")
        .filter({ hasText: /another in \d+ s/ })
        .waitFor();
      expect(await p.getByRole("button", { name: /Resend code in \d+ s/ }).isDisabled()).toBe(true);
      await p.getByLabel("Code").fill(code);
      await p.getByLabel("New password", { exact: true }).fill("a brand new password");
      await p.getByLabel("Confirm new password").fill("a brand new password");
      await p.getByRole("button", { name: "Reset password" }).click();
      await p.getByText("Your password was reset").waitFor();

      // The password before the reset no longer works.
      await signIn(p, alice.username, alice.password);
      await p.getByRole("alert").waitFor();
      // The verified address signs in too.
      await signIn(p, alice.email, "a brand new password");
      await p.getByTestId("chat-list").getByText("Renamed chat").waitFor();
    } finally {
      watchPage(page);
      await other.context.close();
    }
  });

  step("works as a drawer on a phone-sized screen, and in Chinese", async () => {
    const phone = await openTab(browser, parley.url, { viewport: { width: 390, height: 844 }, touch: true });
    watchPage(phone.page);
    try {
      const p = phone.page;
      await signIn(p, alice.username, "a brand new password");
      const openSidebar = p.getByRole("button", { name: "Open sidebar" });
      await openSidebar.waitFor();
      expect(await p.getByTestId("chat-list").isVisible()).toBe(false);
      await openSidebar.click();
      const drawer = p.getByRole("dialog", { name: "Chats" });
      await drawer.getByRole("link", { name: /Renamed chat/ }).click();
      await drawer.waitFor({ state: "detached" });
      await p.locator("article[data-role=user]").first().waitFor();
      // A touch screen: opening a chat does not focus the box (and pop the keyboard up).
      await p.reload();
      await p.locator("article[data-role=user]").first().waitFor();
      await p.getByRole("button", { name: "Send" }).waitFor();
      expect(await p.evaluate(() => matchMedia("(pointer: fine)").matches)).toBe(false);
      expect(await p.evaluate(() => document.activeElement?.id ?? "")).not.toBe("composer");

      // The drawer takes focus, Escape in its menu closes only the menu, Escape again the
      // drawer, and focus is back on the button that opened it.
      await openSidebar.click();
      await waitUntil("focus in the drawer", async () =>
        p.evaluate(() => document.activeElement?.getAttribute("aria-label") === "Close sidebar"),
      );
      expect(await p.evaluate(() => document.activeElement?.id === "composer")).toBe(false);
      await p.getByRole("button", { name: "Account menu" }).click();
      await p.getByRole("menu").waitFor();
      await p.keyboard.press("Escape");
      await p.getByRole("menu").waitFor({ state: "detached" });
      expect(await drawer.isVisible()).toBe(true);
      await p.keyboard.press("Escape");
      await drawer.waitFor({ state: "detached" });
      expect(await p.evaluate(() => document.activeElement?.getAttribute("aria-label"))).toBe("Open sidebar");

      await openSidebar.click();
      await p.getByRole("button", { name: "Account menu" }).click();
      await p.getByRole("menuitem", { name: "Language: 简体中文" }).click();
      await p.getByRole("link", { name: "新对话" }).waitFor();
      expect(await p.evaluate(() => document.documentElement.lang)).toBe("zh-CN");
    } finally {
      watchPage(page);
      await phone.context.close();
    }
  });

  step("dark mode, the folding sidebar and the shortcuts dialog; errors and personas in Chinese", async () => {
    const other = await openTab(browser, parley.url);
    watchPage(other.page);
    try {
      const p = other.page;
      const isDark = () => p.evaluate(() => document.documentElement.classList.contains("dark"));
      await signIn(p, alice.username, "a brand new password");
      await p.getByTestId("user-name").waitFor();
      // System (light here) → light → dark; the choice outlives a reload.
      expect(await isDark()).toBe(false);
      await p.getByRole("button", { name: "Account menu" }).click();
      await p.getByRole("menuitem", { name: "Theme: System" }).click();
      await p.getByRole("button", { name: "Account menu" }).click();
      await p.getByRole("menuitem", { name: "Theme: Light" }).click();
      await waitUntil("dark mode on", isDark);
      const background = await p.evaluate(() => getComputedStyle(document.querySelector("main") as Element).backgroundColor);
      expect(background).not.toMatch(/^rgb\(255, 255, 255\)$/);
      await p.reload();
      await p.getByTestId("user-name").waitFor();
      expect(await isDark()).toBe(true);

      // "?" lists the shortcuts; Escape closes the list.
      await p.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
      await p.keyboard.press("?");
      const shortcuts = p.getByRole("dialog", { name: "Keyboard shortcuts" });
      await shortcuts.getByText("Stop the answer").waitFor();
      await p.keyboard.press("Escape");
      await shortcuts.waitFor({ state: "hidden" });

      // The sidebar folds to a rail, stays folded across a reload, and opens again.
      await p.getByRole("button", { name: "Hide sidebar" }).click();
      await p.getByTestId("sidebar-rail").waitFor();
      expect(await p.getByTestId("chat-list").count()).toBe(0);
      await p.reload();
      await p.getByRole("button", { name: "Show sidebar" }).click();
      await p.getByTestId("chat-list").waitFor();

      // In Chinese: built-in personas, and a provider's refusal, in Chinese; a first answer
      // that failed still names the chat by its question.
      await p.getByRole("button", { name: "Account menu" }).click();
      await p.getByRole("menuitem", { name: "Language: 简体中文" }).click();
      await p.getByRole("link", { name: "新对话" }).click();
      expect(await p.getByLabel("角色").locator("option").allTextContents()).toContain("通用助手");
      await fake.script({ status: 401, message: "Incorrect API key provided: sk-wr***" });
      await p.locator("#composer").fill("Why is the sky blue?");
      await p.locator("#composer").press("Enter");
      const failed = p.locator("article[data-role=assistant][data-status=failed]");
      await failed.waitFor();
      expect(await textOf(failed.getByTestId("failure-text"))).toContain("服务商拒绝了你的 API 密钥");
      await p
        .getByTestId("chat-list")
        .getByRole("link", { name: /Why is the sky blue\?/ })
        .waitFor();
    } finally {
      watchPage(page);
      await other.context.close();
      await fake.clear();
    }
  });

  step("switches the chat to another API config from the header", async () => {
    const other = await openTab(browser, parley.url);
    watchPage(other.page);
    try {
      const p = other.page;
      await signIn(p, alice.username, "a brand new password");
      await p.getByRole("button", { name: "Account menu" }).click();
      await p.getByRole("menuitem", { name: "API configs" }).click();
      await p.getByRole("button", { name: "Add API config" }).click();
      await p.getByLabel("Name", { exact: true }).fill("Reasoner");
      await p.getByLabel("Base URL").fill(fake.baseUrl);
      await p.getByLabel("API key").fill(fake.apiKey);
      await p.getByLabel("Model").fill("fake-reasoner");
      // A successful test loads the provider's models into the picker.
      await p.getByRole("form", { name: "Add API config" }).getByRole("button", { name: "Test connection" }).click();
      await p.getByText(/\d+ models/).waitFor();
      expect(await p.getByLabel("Model").inputValue()).toBe("fake-reasoner");
      await p.getByRole("button", { name: "Save" }).click();
      await p.getByTestId("api-config").filter({ hasText: "Reasoner" }).waitFor();

      await p
        .getByTestId("chat-list")
        .getByRole("link", { name: /Renamed chat/ })
        .click();
      await p.getByTestId("header-model").filter({ hasText: "fake-model" }).waitFor();
      // The picker lists models, not configs: this one of the Reasoner config.
      await p.getByTestId("model-picker-button").click();
      await p.locator('[data-testid=model-choice][data-config="Reasoner"][data-model="fake-reasoner"]').click();
      await p.getByTestId("header-model").filter({ hasText: "fake-reasoner" }).waitFor();
      await fake.script({ text: "Answered by the reasoner.", chunk_delay_ms: 5 });
      await p.locator("#composer").fill("Which model?");
      await p.locator("#composer").press("Enter");
      await p.locator("article[data-role=assistant]").last().filter({ hasText: "Answered by the reasoner." }).waitFor();
      const requests = (await fake.requests()) as { path: string; body?: { model?: string } }[];
      expect(requests.filter((r) => r.path.endsWith("/chat/completions")).at(-1)?.body?.model).toBe("fake-reasoner");
    } finally {
      watchPage(page);
      await other.context.close();
    }
  });

  step("a send the server refuses keeps the typed text in the box", async () => {
    const other = await openTab(browser, parley.url);
    watchPage(other.page);
    try {
      const p = other.page;
      await signIn(p, alice.username, "a brand new password");
      // Without any API config nothing can answer: the server refuses before storing anything.
      await p.getByRole("button", { name: "Account menu" }).click();
      await p.getByRole("menuitem", { name: "API configs" }).click();
      const configs = p.getByTestId("api-config");
      await configs.first().waitFor();
      while ((await configs.count()) > 0) {
        const before = await configs.count();
        await configs.first().getByRole("button", { name: "Delete" }).click();
        await p.getByRole("dialog").getByRole("button", { name: "Delete" }).click();
        await waitUntil("the config gone", async () => (await configs.count()) < before);
      }
      await p.getByText("No API configs yet.").waitFor();

      await p
        .getByTestId("chat-list")
        .getByRole("link", { name: /Renamed chat/ })
        .click();
      await p.locator("article[data-role=user]").first().waitFor();
      const usersBefore = await p.locator("article[data-role=user]").count();
      await p.locator("#composer").fill("Please keep this text");
      await p.locator("#composer").press("Enter");
      const error = p.getByTestId("chat-error");
      await error.waitFor();
      expect(await textOf(error)).toMatch(/API config/i);
      await waitUntil("the text back in the box", async () => (await p.locator("#composer").inputValue()) === "Please keep this text");
      expect(await p.locator("article[data-role=user]").count()).toBe(usersBefore);
    } finally {
      watchPage(page);
      await other.context.close();
    }
  });

  step("two people share a room: invite code, live messages both ways, a kick that ends access", async () => {
    const stamp = Date.now().toString(36);
    const [first, second] = await Promise.all([openTab(browser, parley.url), openTab(browser, parley.url)]);
    try {
      const [a, b] = [first.page, second.page];
      // The sign-in page fetches nothing of rooms; the signed-in app fetches their chunk.
      const roomsChunk = (p: Page) =>
        p.evaluate(() => performance.getEntriesByType("resource").some((r) => /\/assets\/rooms-[\w-]+\.js$/.test(r.name)));
      await a.getByRole("button", { name: "Sign up" }).waitFor();
      expect(await roomsChunk(a)).toBe(false);
      for (const [p, username] of [
        [a, `rooma_${stamp}`],
        [b, `roomb_${stamp}`],
      ] as const) {
        watchPage(p);
        await p.getByRole("button", { name: "Sign up" }).click();
        await p.getByLabel("Username").fill(username);
        await p.getByLabel("Password").fill("a long room password");
        await p.getByRole("button", { name: "Create account" }).click();
        await p.getByTestId("user-name").filter({ hasText: username }).waitFor();
      }

      // Alice creates a private room and an invite code.
      watchPage(a);
      await a.getByRole("button", { name: "Room actions" }).click();
      await a.getByRole("menuitem", { name: "Create room" }).click();
      expect(await roomsChunk(a)).toBe(true);
      const create = a.getByRole("dialog", { name: "Create room" });
      await create.getByLabel("Name").fill("Team room");
      await create.getByLabel("Topic").fill("Plans for the week");
      await create.getByRole("button", { name: "Create" }).click();
      await a.getByTestId("chat-header").getByText("# Team room").waitFor();
      await a.getByTestId("room-list").getByText("Team room").waitFor();
      await a.getByRole("button", { name: "Members" }).click();
      await a.getByRole("button", { name: "Create invite code" }).click();
      const code = await textOf(a.getByTestId("invite-code-value"));
      expect(code.length).toBeGreaterThan(8);

      // Bob opens the invite link and is in.
      watchPage(b);
      await b.goto(`${parley.url}/rooms/join/${encodeURIComponent(code)}`);
      await b.getByTestId("chat-header").getByText("# Team room").waitFor();
      await b.getByTestId("room-list").getByText("Team room").waitFor();
      // Alice sees him join, live, in the members panel and the room.
      await a.getByTestId("room-member").nth(1).waitFor();
      await a.getByTestId("room-notice").filter({ hasText: "joined" }).waitFor();

      // Each sees the other's message live; while Bob writes, Alice sees him typing.
      await b.locator("#composer").pressSequentially("Hello", { delay: 20 });
      await a.getByTestId("room-typing").filter({ hasText: "is typing" }).waitFor();
      await b.locator("#composer").fill("Hello from Bob");
      await b.locator("#composer").press("Enter");
      await a.locator("article[data-author=other]").filter({ hasText: "Hello from Bob" }).waitFor();
      await a.locator("#composer").fill("Hi Bob, welcome");
      await a.locator("#composer").press("Enter");
      await b.locator("article[data-author=other]").filter({ hasText: "Hi Bob, welcome" }).waitFor();
      await b.locator("article[data-author=me]").filter({ hasText: "Hello from Bob" }).waitFor();
      // His post ends the typing line at once.
      await waitUntil("the typing line gone", async () => (await a.getByTestId("room-typing").count()) === 0);

      // Away from the room, Bob sees what he has not read counted in the sidebar; opening the
      // room reads it, also for the server (a reload shows no count).
      await b.getByRole("link", { name: "New chat" }).click();
      await a.locator("#composer").fill("Are you still there?");
      await a.locator("#composer").press("Enter");
      await b.getByTestId("room-unread").filter({ hasText: "1" }).waitFor();
      await b.getByTestId("room-list").getByText("Team room").click();
      await b.locator("article[data-author=other]").filter({ hasText: "Are you still there?" }).waitFor();
      await waitUntil("the count gone", async () => (await b.getByTestId("room-unread").count()) === 0);
      await b.reload();
      await b.locator("article[data-author=other]").filter({ hasText: "Are you still there?" }).waitFor();
      await b.getByTestId("room-list").getByText("Team room").waitFor();
      expect(await b.getByTestId("room-unread").count()).toBe(0);

      // Alice gives the room an AI with one of her configs; Bob asks it, and both see it answer.
      watchPage(a);
      await a.getByRole("button", { name: "Account menu" }).click();
      await a.getByRole("menuitem", { name: "API configs" }).click();
      await a.getByRole("button", { name: "Add API config" }).click();
      await a.getByLabel("Name", { exact: true }).fill("Room AI");
      await a.getByLabel("Base URL").fill(fake.baseUrl);
      await a.getByLabel("API key").fill(fake.apiKey);
      await a.getByLabel("Model").fill("fake-model");
      await a.getByRole("button", { name: "Save" }).click();
      await a.getByTestId("api-config").filter({ hasText: "Room AI" }).waitFor();
      await a.getByTestId("room-list").getByText("Team room").click();
      await a.getByRole("button", { name: "Room settings" }).click();
      const settings = a.getByRole("dialog", { name: "Room settings" });
      await settings.getByLabel(/AI member/).selectOption({ label: "Room AI" });
      await settings.getByRole("button", { name: "Apply" }).click();
      await settings.getByText(/members mention @ai/).waitFor();
      await settings.getByRole("button", { name: "Close" }).click();
      await fake.script({ text: "Hello both of you, from the room's AI.", chunk_delay_ms: 20 });
      watchPage(b);
      await b.locator("#composer").fill("@ai say hello to us");
      await b.locator("#composer").press("Enter");
      for (const p of [a, b]) {
        await p.locator("article[data-author=ai]").filter({ hasText: "Hello both of you, from the room's AI." }).waitFor();
      }

      // Alice removes Bob: his open room goes away at once, from the page and the sidebar.
      watchPage(a);
      await a.getByRole("button", { name: "Members" }).click();
      const bobRow = a.getByTestId("room-member").filter({ hasNotText: "you" });
      await bobRow.getByRole("button", { name: /^Member actions/ }).click();
      await a.getByRole("menuitem", { name: "Remove from room" }).click();
      await waitUntil("Bob gone from the members", async () => (await a.getByTestId("room-member").count()) === 1);
      watchPage(b);
      await b.getByTestId("room-gone").filter({ hasText: "You were removed from this room." }).waitFor();
      await waitUntil("the room gone from Bob's sidebar", async () => (await b.getByTestId("room-name").count()) === 0);
      await a.getByTestId("room-notice").filter({ hasText: "was removed" }).waitFor();
    } finally {
      watchPage(page);
      await first.context.close();
      await second.context.close();
    }
  });

  step("never let page scripts see a refresh token", async () => {
    const answers = (await Promise.all(authAnswers)).filter((a) => a !== null);
    expect(new Set(answers.map((a) => a.method))).toEqual(new Set(["Register", "Login", "RefreshToken"]));
    expect(answers.filter((a) => a.refreshToken !== "")).toEqual([]);
    expect(await page.evaluate(() => document.cookie)).not.toContain("parley_refresh");
    const cookie = (await tab.context.cookies()).find((c) => c.name === "parley_refresh");
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Strict" });
  });

  step("ran under the gateway's Content-Security-Policy without violations", async () => {
    const violations = tab.problems.filter((p) => /Content.Security.Policy|Refused to/i.test(p));
    expect(violations).toEqual([]);
    const csp = (await page.request.get(parley.url)).headers()["content-security-policy"];
    expect(csp).toContain("script-src 'self'");
  });
});

// Notifications in two browsers: Bob mentions @alice in a room (picking her from the `@`
// suggestions), Alice's bell counts it live, and clicking it opens the room.
import { afterAll, beforeAll, describe, expect } from "vitest";
import type { Browser, Page } from "playwright-core";
import { startFakeProvider, startParley, type FakeProvider, type Parley } from "./stack";
import { launch, openTab, step, textOf, waitUntil, watchPage, type Tab } from "./browser";

const stamp = Date.now().toString(36);
const alice = { username: `alice_${stamp}`, displayName: "Alice Bell" };
const bob = { username: `bob_${stamp}` };

let parley: Parley;
let fake: FakeProvider;
let browser: Browser;
let first: Tab;
let second: Tab;
let a: Page;
let b: Page;

const roomsChunk = (p: Page) =>
  p.evaluate(() => performance.getEntriesByType("resource").some((r) => /\/assets\/rooms-[\w-]+\.js$/.test(r.name)));

async function signUp(p: Page, username: string, displayName?: string) {
  watchPage(p);
  await p.getByRole("button", { name: "Sign up" }).click();
  await p.getByLabel("Username").fill(username);
  await p.getByLabel("Password").fill("a long bell password");
  if (displayName) await p.getByLabel("Display name (optional)").fill(displayName);
  await p.getByRole("button", { name: "Create account" }).click();
  await p.getByTestId("user-name").filter({ hasText: displayName ?? username }).waitFor();
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

describe("notifications in two browsers", () => {
  step("both sign up; the sign-in page loads nothing of rooms, the bell comes with the app", async () => {
    await a.getByRole("button", { name: "Sign up" }).waitFor();
    expect(await roomsChunk(a)).toBe(false);
    await signUp(a, alice.username, alice.displayName);
    await signUp(b, bob.username);
    await a.getByRole("button", { name: "Notifications" }).waitFor();
    expect(await roomsChunk(a)).toBe(true);
    expect(await a.getByTestId("notification-badge").count()).toBe(0);
  });

  step("Bob joins Alice's room and mentions @alice, picked from the suggestions", async () => {
    watchPage(a);
    await a.getByRole("button", { name: "Room actions" }).click();
    await a.getByRole("menuitem", { name: "Create room" }).click();
    const create = a.getByRole("dialog", { name: "Create room" });
    await create.getByLabel("Name").fill("Bell room");
    await create.getByRole("button", { name: "Create" }).click();
    await a.getByTestId("chat-header").getByText("# Bell room").waitFor();
    await a.getByRole("button", { name: "Members" }).click();
    await a.getByRole("button", { name: "Create invite code" }).click();
    const code = await textOf(a.getByTestId("invite-code-value"));
    // Alice goes back to her chats: the mention must bring her to the room.
    await a.getByRole("link", { name: "New chat" }).click();
    await waitUntil("Alice away from the room", async () => (await a.getByTestId("chat-header").getByText("# Bell room").count()) === 0);

    watchPage(b);
    await b.goto(`${parley.url}/rooms/join/${encodeURIComponent(code)}`);
    await b.getByTestId("chat-header").getByText("# Bell room").waitFor();
    await b.locator("#composer").pressSequentially("Look here @ali", { delay: 20 });
    const suggestions = b.getByRole("listbox", { name: "People to mention" });
    await suggestions.getByRole("option", { name: new RegExp(`@${alice.username}`) }).waitFor();
    await b.locator("#composer").press("Enter");
    await waitUntil("the mention inserted", async () => (await b.locator("#composer").inputValue()) === `Look here @${alice.username} `);
    await b.locator("#composer").pressSequentially("please", { delay: 10 });
    await b.locator("#composer").press("Enter");
    await b.getByTestId("room-messages").getByText(`Look here @${alice.username} please`).waitFor();
  });

  step("Alice's bell counts the mention live; clicking it opens the room", async () => {
    watchPage(a);
    await a.getByTestId("notification-badge").filter({ hasText: "1" }).waitFor();
    await a.getByRole("button", { name: "Notifications, 1 unread" }).click();
    const list = a.getByRole("dialog", { name: "Notifications" });
    const mention = list.getByTestId("notification").filter({ hasText: "mentioned you in #Bell room" });
    await mention.filter({ hasText: `Look here @${alice.username} please` }).waitFor();
    expect(await mention.getAttribute("data-unread")).toBe("true");
    await mention.click();
    await a.getByTestId("chat-header").getByText("# Bell room").waitFor();
    await a.getByTestId("room-messages").getByText(`Look here @${alice.username} please`).waitFor();
    await waitUntil("the badge gone", async () => (await a.getByTestId("notification-badge").count()) === 0);
    // Read for the server too: a reload shows no count.
    await a.reload();
    await a.getByRole("button", { name: "Notifications" }).waitFor();
    await a.getByTestId("chat-header").getByText("# Bell room").waitFor();
    expect(await a.getByTestId("notification-badge").count()).toBe(0);
  });
});

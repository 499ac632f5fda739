import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { Code, ConnectError } from "@connectrpc/connect";
import { App } from "./App";
import { createApi } from "../api/client";
import { createRouterTransport } from "@connectrpc/connect";
import { UserSchema, UserService } from "../gen/parley/user/v1/user_pb";
import { create } from "@bufbuild/protobuf";
import { startPreload } from "./preload";

afterEach(cleanup);

/** The page's real client, talking to an in-memory user-service whose RefreshToken answers
 * from a script: each call takes the next answer. */
function apiAnswering(answers: ("unavailable" | "unauthenticated")[]) {
  let calls = 0;
  const api = createApi((interceptors) =>
    createRouterTransport(
      ({ service }) =>
        service(UserService, {
          refreshToken() {
            const answer = answers[Math.min(calls++, answers.length - 1)];
            throw answer === "unavailable"
              ? new ConnectError("upstream connect error", Code.Unavailable)
              : new ConnectError("no refresh token", Code.Unauthenticated);
          },
        }),
      { transport: { interceptors } },
    ),
  );
  return { api, calls: () => calls };
}

describe("the page load", () => {
  it("does not show the sign-in form when Parley cannot be reached, and retries", async () => {
    const { api, calls } = apiAnswering(["unavailable", "unavailable", "unauthenticated"]);
    render(<App api={api} />);
    await screen.findByText("Can't reach Parley");
    expect(screen.queryByRole("button", { name: "Sign in" })).toBeNull();
    expect(screen.getByRole("status").textContent).toContain("still signed in");

    fireEvent.click(screen.getByRole("button", { name: "Retry now" }));
    await waitFor(() => expect(calls()).toBe(2));
    await screen.findByText("Can't reach Parley");

    // Once the server answers, its answer decides: here, no session.
    fireEvent.click(screen.getByRole("button", { name: "Retry now" }));
    await screen.findByRole("button", { name: "Sign in" });
    expect(screen.queryByTestId("auth-notice")).toBeNull();
  });

  it("shows the sign-in form at once when there is no session", async () => {
    const { api, calls } = apiAnswering(["unauthenticated"]);
    render(<App api={api} />);
    await screen.findByRole("button", { name: "Sign in" });
    expect(calls()).toBe(1);
  });
});

describe("a device that was signed in", () => {
  it("uses the session restore started before the first render, even when it answered first", async () => {
    localStorage.setItem("parley.signedIn", "1");
    let calls = 0;
    const api = createApi((interceptors) =>
      createRouterTransport(
        ({ service }) =>
          service(UserService, {
            refreshToken() {
              calls++;
              return { user: create(UserSchema, { id: 1n, username: "ada" }), accessToken: "token-1", accessExpiresIn: 900n };
            },
          }),
        { transport: { interceptors } },
      ),
    );
    startPreload(api, "/settings/profile");
    // The answer is in before the page subscribes to the session.
    await waitFor(() => expect(api.tokens.currentToken()).toBe("token-1"));
    render(<App api={api} />);
    // The app's chunk is transformed on first import here: give it time on a busy machine.
    expect(await screen.findByTestId("user-name", {}, { timeout: 30_000 })).toHaveProperty("textContent", "ada");
    expect(screen.queryByRole("button", { name: "Sign in" })).toBeNull();
    expect(calls).toBe(1);
    localStorage.clear();
  }, 60_000);
});

import { describe, expect, it } from "vitest";
import { parseRoute, routePath } from "./router";

describe("router", () => {
  it("knows the administration page and round-trips every route", () => {
    expect(parseRoute("/admin")).toEqual({ name: "admin" });
    expect(parseRoute("/admin/")).toEqual({ name: "admin" });
    expect(parseRoute("/administer")).toEqual({ name: "new" });
    for (const path of ["/", "/c/42", "/settings/profile", "/admin"]) expect(routePath(parseRoute(path))).toBe(path);
  });
});

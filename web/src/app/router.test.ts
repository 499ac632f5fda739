import { describe, expect, it } from "vitest";
import { parseRoute, routePath } from "./router";

describe("router", () => {
  it("knows the administration page and round-trips every route", () => {
    expect(parseRoute("/admin")).toEqual({ name: "admin" });
    expect(parseRoute("/admin/")).toEqual({ name: "admin" });
    expect(parseRoute("/administer")).toEqual({ name: "new" });
    for (const path of ["/", "/c/42", "/settings/profile", "/admin", "/rooms/7", "/rooms/join/AbC-9_x"])
      expect(routePath(parseRoute(path))).toBe(path);
  });
  it("knows rooms and invite links", () => {
    expect(parseRoute("/rooms/12")).toEqual({ name: "room", id: "12" });
    expect(parseRoute("/rooms/join/s3cr%2Ft")).toEqual({ name: "roomJoin", code: "s3cr/t" });
    expect(parseRoute("/rooms/abc")).toEqual({ name: "new" });
  });
});

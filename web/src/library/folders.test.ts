import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { FolderSchema } from "../gen/parley/chat/v1/folder_pb";
import { SessionSchema } from "../gen/parley/chat/v1/session_pb";
import { splitByFolder } from "./folders";

describe("the sidebar's folders", () => {
  it("puts chats under their folder and leaves the rest (and unknown folders) to the date groups", () => {
    const folders = [create(FolderSchema, { id: 1n, name: "Home" }), create(FolderSchema, { id: 2n, name: "Work" })];
    const chat = (id: number, folderId?: bigint) => create(SessionSchema, { id: BigInt(id), title: `c${id}`, folderId });
    const split = splitByFolder([chat(1, 2n), chat(2), chat(3, 9n), chat(4, 2n)], folders);
    expect(split.folders.map((g) => [g.folder.name, g.sessions.map((s) => s.title)])).toEqual([
      ["Home", []],
      ["Work", ["c1", "c4"]],
    ]);
    expect(split.rest.map((s) => s.title)).toEqual(["c2", "c3"]);
  });
});

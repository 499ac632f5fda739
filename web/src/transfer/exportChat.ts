import { createClient } from "@connectrpc/connect";
import { ExportFormat, TransferService } from "../gen/parley/chat/v1/transfer_pb";
import type { Api } from "../api/client";
import { saveFile } from "./download";

/** Downloads one chat as the server writes it (Parley JSON or Markdown). */
export async function exportChat(api: Api, sessionId: bigint, format: "json" | "markdown"): Promise<void> {
  const transfer = createClient(TransferService, api.transport);
  const res = await transfer.exportSession({
    sessionId,
    format: format === "json" ? ExportFormat.JSON : ExportFormat.MARKDOWN,
  });
  const file = res.file;
  if (!file) throw new Error("the server sent no file");
  saveFile(file.name, `${file.mediaType}; charset=utf-8`, file.content);
}

import { useEffect, useMemo, useRef, useState } from "react";
import { createClient } from "@connectrpc/connect";
import { Code } from "@connectrpc/connect";
import { ImportFormat, TransferService } from "../gen/parley/chat/v1/transfer_pb";
import { ShareService, type ShareLink } from "../gen/parley/chat/v1/share_pb";
import { errorCode, fieldViolations } from "../api/client";
import { useStore } from "../app/store";
import { navigate } from "../app/router";
import { useT } from "../i18n";
import { describeError } from "../ui/errorText";
import { useTransferT } from "./strings";
import { saveFile } from "./download";
import { zip, type ZipFile } from "./zip";
import { ShareLinkList } from "../share/ShareDialog";

function today(): string {
  const d = new Date();
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** Settings → Data: export everything as a zip, import a Parley or ChatGPT export, and the
 * user's shared links. */
export default function DataPanel() {
  const t = useT();
  const tt = useTransferT();
  const { api, reloadSessions } = useStore();
  const transfer = useMemo(() => createClient(TransferService, api.transport), [api]);
  const shares = useMemo(() => createClient(ShareService, api.transport), [api]);
  const [exportState, setExportState] = useState<{ busy: boolean; text: string; error?: boolean }>({ busy: false, text: "" });
  const [importState, setImportState] = useState<{ busy: boolean; text: string; error?: boolean }>({ busy: false, text: "" });
  const [links, setLinks] = useState<ShareLink[] | null>(null);
  const [linksError, setLinksError] = useState("");
  const fileInput = useRef<HTMLInputElement>(null);

  useEffect(() => {
    let cancelled = false;
    shares
      .listShareLinks({ pageSize: 100 })
      .then((res) => !cancelled && setLinks(res.links))
      .catch((err) => !cancelled && setLinksError(`${tt("couldNotLoadLinks")}: ${describeError(err, t)}`));
    return () => {
      cancelled = true;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shares]);

  const exportAll = async () => {
    setExportState({ busy: true, text: tt("exporting", { count: 0 }) });
    try {
      const encoder = new TextEncoder();
      const files: ZipFile[] = [];
      for await (const res of transfer.exportAccountData({})) {
        if (!res.file) continue;
        files.push({ name: res.file.name, data: encoder.encode(res.file.content) });
        setExportState({ busy: true, text: tt("exporting", { count: files.length }) });
      }
      saveFile(`parley-export-${today()}.zip`, "application/zip", await zip(files));
      setExportState({ busy: false, text: tt("exported", { count: files.length }) });
    } catch (err) {
      setExportState({ busy: false, text: `${tt("couldNotExport")}: ${describeError(err, t)}`, error: true });
    }
  };

  const importFile = async (file: File) => {
    setImportState({ busy: true, text: tt("importing") });
    try {
      const content = new Uint8Array(await file.arrayBuffer());
      const res = await transfer.importSessions({ content, format: ImportFormat.UNSPECIFIED });
      await reloadSessions();
      setImportState({ busy: false, text: tt("imported", { count: res.sessions.length }) });
      const first = res.sessions[0];
      if (res.sessions.length === 1 && first) navigate({ name: "chat", id: first.id.toString() });
    } catch (err) {
      // The server names the file's problem (which chat, which message).
      const problem = errorCode(err) === Code.InvalidArgument ? fieldViolations(err)[0]?.description : undefined;
      const text = problem ? `${file.name} ${problem}` : describeError(err, t);
      setImportState({ busy: false, text: `${tt("couldNotImport")}: ${text}`, error: true });
    } finally {
      if (fileInput.current) fileInput.current.value = "";
    }
  };

  const status = (state: { text: string; error?: boolean }, testId: string) =>
    state.text && (
      <p
        role={state.error ? "alert" : "status"}
        className={`mt-2 text-sm ${state.error ? "text-red-700" : "text-gray-600"}`}
        data-testid={testId}
      >
        {state.text}
      </p>
    );

  return (
    <div className="space-y-8">
      <section aria-labelledby="export-all-heading">
        <h2 id="export-all-heading" className="text-base font-semibold">
          {tt("exportAll")}
        </h2>
        <p className="mt-1 text-sm text-gray-600">{tt("exportAllHint")}</p>
        <button type="button" className="btn-primary mt-3" disabled={exportState.busy} onClick={() => void exportAll()}>
          {tt("exportAll")}
        </button>
        {status(exportState, "export-status")}
      </section>
      <section aria-labelledby="import-heading">
        <h2 id="import-heading" className="text-base font-semibold">
          {tt("importChats")}
        </h2>
        <p className="mt-1 text-sm text-gray-600">{tt("importHint")}</p>
        <label className="btn-secondary mt-3 inline-block cursor-pointer">
          {importState.busy ? tt("importing") : tt("chooseFile")}
          <input
            ref={fileInput}
            type="file"
            accept=".json,application/json"
            className="sr-only"
            disabled={importState.busy}
            data-testid="import-file"
            onChange={(e) => {
              const file = e.currentTarget.files?.[0];
              if (file) void importFile(file);
            }}
          />
        </label>
        {status(importState, "import-status")}
      </section>
      <section aria-labelledby="links-heading">
        <h2 id="links-heading" className="mb-2 text-base font-semibold">
          {tt("myLinks")}
        </h2>
        {linksError && (
          <p role="alert" className="text-sm text-red-700">
            {linksError}
          </p>
        )}
        {links && <ShareLinkList api={api} links={links} onRevoked={(id) => setLinks((prev) => (prev ?? []).filter((l) => l.id !== id))} />}
      </section>
    </div>
  );
}

import { useCallback, useEffect, useMemo, useState } from "react";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { SharedChatService, type SharedChat } from "../gen/parley/chat/v1/share_pb";
import { MessageRole } from "../gen/parley/chat/v1/message_pb";
import { Markdown } from "../markdown/Markdown";
import { useLocale } from "../i18n";
import { Logo } from "../ui/icons";
import { formatTime } from "../ui/time";
import { useTransferT } from "../transfer/strings";

type State = { status: "loading" } | { status: "ready"; chat: SharedChat } | { status: "notFound" } | { status: "failed" };

/** /s/<token>: a shared chat's snapshot, read without signing in (no access token is sent;
 * the token in the address is the only credential). A chunk of its own. */
export default function SharedChatPage({ token }: { token: string }) {
  const tt = useTransferT();
  const { locale } = useLocale();
  const client = useMemo(() => createClient(SharedChatService, createGrpcWebTransport({ baseUrl: window.location.origin })), []);
  const [state, setState] = useState<State>({ status: "loading" });
  const load = useCallback(async () => {
    setState({ status: "loading" });
    try {
      const res = await client.getSharedChat({ shareToken: token });
      setState(res.chat ? { status: "ready", chat: res.chat } : { status: "notFound" });
    } catch (err) {
      const code = ConnectError.from(err).code;
      setState(code === Code.NotFound || code === Code.InvalidArgument ? { status: "notFound" } : { status: "failed" });
    }
  }, [client, token]);
  useEffect(() => {
    void load();
  }, [load]);

  const title = state.status === "ready" ? state.chat.title || tt("untitled") : tt("sharedChat");
  useEffect(() => {
    document.title = `${title} · Parley`;
  }, [title]);

  return (
    <div className="flex h-full flex-col bg-white text-gray-900">
      <header className="flex items-center justify-between gap-3 bg-black px-4 py-2.5 text-[#fff]">
        <a href="/" className="flex items-center gap-2 text-lg font-semibold">
          <Logo className="h-7 w-7" />
          <span>Parley</span>
        </a>
        <a href="/" className="rounded px-2 py-1 text-sm hover:bg-[#ffffff1a]">
          {tt("openParley")}
        </a>
      </header>
      <main className="min-h-0 flex-1 overflow-y-auto">
        <div className="mx-auto max-w-3xl px-4 py-6">
          {state.status === "loading" && (
            <p aria-busy="true" className="text-gray-500">
              …
            </p>
          )}
          {state.status === "notFound" && (
            <p role="alert" className="rounded-lg bg-gray-100 p-4 text-gray-700" data-testid="shared-not-found">
              {tt("sharedNotFound")}
            </p>
          )}
          {state.status === "failed" && (
            <div role="alert" className="rounded-lg bg-gray-100 p-4 text-gray-700">
              <p>{tt("sharedCouldNotLoad")}</p>
              <button type="button" className="btn-secondary mt-3" onClick={() => void load()}>
                {tt("retry")}
              </button>
            </div>
          )}
          {state.status === "ready" && (
            <article aria-labelledby="shared-title">
              <h1 id="shared-title" className="text-2xl font-semibold" data-testid="shared-title">
                {title}
              </h1>
              <p className="mt-1 text-sm text-gray-500">
                {tt("sharedBy", { date: formatTime(state.chat.sharedAt, locale) ?? "" })}
                {state.chat.personaName && ` · ${state.chat.personaName}`}
              </p>
              <ol className="mt-6 space-y-6">
                {state.chat.messages.map((message, i) => {
                  const user = message.role === MessageRole.USER;
                  return (
                    <li key={i} className={user ? "flex justify-end" : ""} data-testid={user ? "shared-user" : "shared-assistant"}>
                      <div className={user ? "max-w-[85%] whitespace-pre-wrap rounded-2xl bg-gray-100 px-4 py-2" : "min-w-0"}>
                        <div className="mb-1 text-xs text-gray-500">
                          {user ? tt("you") : message.model || tt("assistant")} · {formatTime(message.createdAt, locale)}
                        </div>
                        {user ? (
                          message.content
                        ) : (
                          <div className="message-content">
                            <Markdown text={message.content} />
                          </div>
                        )}
                      </div>
                    </li>
                  );
                })}
              </ol>
            </article>
          )}
        </div>
      </main>
    </div>
  );
}

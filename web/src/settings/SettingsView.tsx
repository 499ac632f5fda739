import { lazy, Suspense } from "react";
import { navigate, routePath, type SettingsTab } from "../app/router";
import { useT, type MessageKey } from "../i18n";
import { ChatHeader } from "../chat/ChatView";
import { ApiConfigsPanel } from "./ApiConfigsPanel";
import { PersonasPanel } from "./PersonasPanel";
import { ChatDefaultsPanel } from "./ChatDefaultsPanel";
import { PasswordPanel, ProfilePanel } from "./AccountPanels";
import { QuotaPanel } from "./QuotaPanel";
import { TokenUsagePanel } from "./TokenUsagePanel";

// Export, import and share links: a chunk of its own, fetched when the tab opens.
const DataPanel = lazy(() => import("../transfer/DataPanel"));
// The prompt library's panel, fetched when the tab opens.
const PromptsPanel = lazy(() => import("../library/PromptsPanel"));
// Notification settings belong to the rooms chunk (its stream and client).
const NotificationSettingsPanel = lazy(() => import("../rooms").then((m) => ({ default: m.NotificationSettingsPanel })));

const tabs: { id: SettingsTab; label: MessageKey }[] = [
  { id: "profile", label: "profile" },
  { id: "api-configs", label: "apiConfigs" },
  { id: "personas", label: "personas" },
  { id: "prompts", label: "prompts" },
  { id: "password", label: "changePassword" },
  { id: "usage", label: "usageAndLimits" },
  { id: "data", label: "dataSettings" },
  { id: "notifications", label: "notifications" },
];

export default function SettingsView({ tab, onOpenSidebar }: { tab: SettingsTab; onOpenSidebar: () => void }) {
  const t = useT();
  const current = tabs.find((x) => x.id === tab) ?? tabs[0];
  return (
    <>
      <ChatHeader title={t("settings")} subtitle={<span className="truncate">{t(current.label)}</span>} onOpenSidebar={onOpenSidebar} />
      <div className="min-h-0 flex-1 overflow-y-auto bg-white">
        <div className="mx-auto max-w-3xl px-4 py-6 sm:px-6">
          <nav className="mb-6 flex gap-1 overflow-x-auto border-b border-gray-200" aria-label={t("settings")}>
            {tabs.map((x) => (
              <a
                key={x.id}
                href={routePath({ name: "settings", tab: x.id })}
                aria-current={x.id === tab ? "page" : undefined}
                onClick={(e) => {
                  e.preventDefault();
                  navigate({ name: "settings", tab: x.id });
                }}
                className={`-mb-px whitespace-nowrap border-b-2 px-3 py-2 text-sm ${
                  x.id === tab ? "border-gray-900 font-medium text-gray-900" : "border-transparent text-gray-500 hover:text-gray-900"
                }`}
              >
                {t(x.label)}
              </a>
            ))}
          </nav>
          {tab === "profile" && <ProfilePanel />}
          {tab === "password" && <PasswordPanel />}
          {tab === "api-configs" && <ApiConfigsPanel />}
          {tab === "personas" && (
            <div className="space-y-8">
              <PersonasPanel />
              <ChatDefaultsPanel />
            </div>
          )}
          {tab === "prompts" && (
            <Suspense fallback={null}>
              <PromptsPanel />
            </Suspense>
          )}
          {tab === "data" && (
            <Suspense fallback={null}>
              <DataPanel />
            </Suspense>
          )}
          {tab === "notifications" && (
            <Suspense fallback={null}>
              <NotificationSettingsPanel />
            </Suspense>
          )}
          {tab === "usage" && (
            <div className="space-y-8">
              <QuotaPanel />
              <TokenUsagePanel />
            </div>
          )}
        </div>
      </div>
    </>
  );
}

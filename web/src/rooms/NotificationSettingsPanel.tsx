// Settings → Notifications: which kinds notify the user, and the rooms muted. Each change is
// saved at once with a mask naming only it, so two tabs changing different ones keep both.
import { useEffect, useState } from "react";
import { useT, type MessageKey } from "../i18n";
import { useToast } from "../ui/toast";
import { describeError } from "../ui/errorText";
import type { NotificationSettings } from "../gen/parley/chat/v1/notification_pb";
import { useRooms } from "./roomsStore";
import { useRoomsStore } from "./RoomsSection";

type KindFlag = "mentions" | "invitations" | "roleChanges" | "removals" | "announcements";

const kinds: { flag: KindFlag; path: string; label: MessageKey }[] = [
  { flag: "mentions", path: "mentions", label: "notifyMentionsLabel" },
  { flag: "invitations", path: "invitations", label: "notifyInvitationsLabel" },
  { flag: "roleChanges", path: "role_changes", label: "notifyRoleChangesLabel" },
  { flag: "removals", path: "removals", label: "notifyRemovalsLabel" },
  { flag: "announcements", path: "announcements", label: "notifyAnnouncementsLabel" },
];

export default function NotificationSettingsPanel() {
  const t = useT();
  const toast = useToast();
  const store = useRoomsStore();
  const state = useRooms(store);
  const [settings, setSettings] = useState<NotificationSettings | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    let current = true;
    store.notificationsClient.getNotificationSettings({}).then(
      (res) => current && setSettings(res.settings ?? null),
      (err: unknown) => current && setError(describeError(err, t)),
    );
    return () => {
      current = false;
    };
  }, [store, t]);

  const save = async (change: Partial<NotificationSettings>, path: string) => {
    if (!settings) return;
    setBusy(true);
    try {
      const res = await store.notificationsClient.updateNotificationSettings({
        settings: { ...settings, ...change },
        updateMask: { paths: [path] },
      });
      if (res.settings) setSettings(res.settings);
      toast(t("notificationSettingsSaved"));
    } catch (err) {
      toast(`${t("couldNotSaveNotificationSettings")}: ${describeError(err, t)}`);
    } finally {
      setBusy(false);
    }
  };

  if (error)
    return (
      <p role="alert" className="alert-error">
        {t("couldNotLoadNotificationSettings")}: {error}
      </p>
    );
  if (!settings) return <div aria-busy="true" className="h-24" />;
  const muted = new Set(settings.mutedRoomIds.map(String));
  return (
    <div className="space-y-8" data-testid="notification-settings">
      <fieldset className="space-y-2">
        <legend className="mb-2 text-sm font-semibold">{t("notifyMeOf")}</legend>
        {kinds.map((k) => (
          <label key={k.flag} className="flex items-center gap-2 text-sm">
            <input
              type="checkbox"
              checked={settings[k.flag]}
              disabled={busy}
              onChange={(e) => void save({ [k.flag]: e.target.checked }, k.path)}
            />
            {t(k.label)}
          </label>
        ))}
      </fieldset>
      <fieldset className="space-y-2">
        <legend className="text-sm font-semibold">{t("mutedRooms")}</legend>
        <p className="text-xs text-gray-600">{t("mutedRoomsHint")}</p>
        {state.rooms.length === 0 && <p className="text-sm text-gray-500">{t("noRoomsToMute")}</p>}
        {state.rooms.map((room) => {
          const id = room.id.toString();
          return (
            <label key={id} className="flex items-center gap-2 text-sm">
              <input
                type="checkbox"
                checked={muted.has(id)}
                disabled={busy}
                onChange={(e) => {
                  const next = new Set(muted);
                  if (e.target.checked) next.add(id);
                  else next.delete(id);
                  void save({ mutedRoomIds: [...next].map((x) => BigInt(x)) }, "muted_room_ids");
                }}
              />
              # {room.name}
            </label>
          );
        })}
      </fieldset>
    </div>
  );
}

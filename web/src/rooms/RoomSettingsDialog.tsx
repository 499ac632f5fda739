// A room's settings: name, topic and visibility (owner and admins); the AI member's API config
// and persona, and deleting the room (owner only).
import { useState, type FormEvent } from "react";
import { useStore } from "../app/store";
import { navigate } from "../app/router";
import { useT } from "../i18n";
import { ConfirmModal, Modal } from "../ui/Modal";
import { useToast } from "../ui/toast";
import { describeError } from "../ui/errorText";
import { RoomRole, RoomVisibility, type Room } from "../gen/parley/chat/v1/room_pb";
import { useRoomsStore } from "./RoomsSection";

export function RoomSettingsDialog({ room, onClose }: { room: Room; onClose: () => void }) {
  const t = useT();
  const toast = useToast();
  const { configs, personas } = useStore();
  const store = useRoomsStore();
  const isOwner = room.myRole === RoomRole.OWNER;
  const [name, setName] = useState(room.name);
  const [topic, setTopic] = useState(room.topic);
  const [isPublic, setIsPublic] = useState(room.visibility === RoomVisibility.PUBLIC);
  // Days messages are kept; "" or 0 keeps them forever.
  const [retention, setRetention] = useState(room.retentionDays > 0 ? String(room.retentionDays) : "");
  const [aiConfig, setAiConfig] = useState("");
  const [aiPersona, setAiPersona] = useState(room.aiPersonaId !== undefined ? room.aiPersonaId.toString() : "");
  const [error, setError] = useState<string | null>(null);
  const [deleting, setDeleting] = useState(false);

  const save = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      const res = await store.client.updateRoom({
        roomId: room.id,
        name: name.trim(),
        topic: topic.trim(),
        visibility: isPublic ? RoomVisibility.PUBLIC : RoomVisibility.PRIVATE,
        retentionDays: retention.trim() ? Number(retention) : 0,
        updateMask: { paths: ["name", "topic", "visibility", "retention_days"] },
      });
      if (res.room) store.roomChanged({ ...res.room, myRole: room.myRole, unreadCount: room.unreadCount });
      onClose();
    } catch (err) {
      setError(describeError(err, t));
    }
  };

  const saveAi = async () => {
    setError(null);
    try {
      const res = await store.client.setRoomAi({
        roomId: room.id,
        apiConfigId: aiConfig ? BigInt(aiConfig) : undefined,
        // A persona goes with a config only.
        personaId: aiConfig && aiPersona ? BigInt(aiPersona) : undefined,
      });
      if (res.room) store.roomChanged({ ...res.room, myRole: room.myRole, unreadCount: room.unreadCount });
      toast(aiConfig ? t("roomAiOn") : t("roomAiOff"));
    } catch (err) {
      setError(describeError(err, t));
    }
  };

  const remove = async () => {
    try {
      await store.client.deleteRoom({ roomId: room.id });
      onClose();
      navigate({ name: "new" }, { replace: true });
    } catch (err) {
      setError(describeError(err, t));
    }
  };

  return (
    <Modal open title={t("roomSettings")} onClose={onClose}>
      <form onSubmit={(e) => void save(e)} className="space-y-3">
        <label className="block text-sm">
          {t("roomName")}
          <input className="input mt-1" value={name} onChange={(e) => setName(e.target.value)} required maxLength={100} />
        </label>
        <label className="block text-sm">
          {t("roomTopic")}
          <input className="input mt-1" value={topic} onChange={(e) => setTopic(e.target.value)} maxLength={500} />
        </label>
        <label className="flex items-center gap-2 text-sm">
          <input type="checkbox" checked={isPublic} onChange={(e) => setIsPublic(e.target.checked)} />
          {t("roomPublicLabel")}
        </label>
        <label className="block text-sm">
          {t("roomRetention")}
          <input
            className="input mt-1"
            type="number"
            inputMode="numeric"
            min={0}
            max={36500}
            step={1}
            value={retention}
            placeholder={t("roomRetentionForever")}
            onChange={(e) => setRetention(e.target.value)}
          />
          <span className="mt-1 block text-xs text-gray-500">{t("roomRetentionHelp")}</span>
        </label>
        <div className="flex justify-end">
          <button type="submit" className="btn-primary" disabled={!name.trim()}>
            {t("save")}
          </button>
        </div>
      </form>
      {isOwner && (
        <div className="mt-4 space-y-2 border-t border-gray-200 pt-4">
          <label className="block text-sm">
            {t("roomAiMember")}
            <select className="input mt-1" value={aiConfig} onChange={(e) => setAiConfig(e.target.value)}>
              <option value="">{room.aiEnabled ? t("roomAiTurnOff") : t("roomAiNone")}</option>
              {configs.map((c) => (
                <option key={c.id.toString()} value={c.id.toString()}>
                  {c.name}
                </option>
              ))}
            </select>
          </label>
          <label className="block text-sm">
            {t("roomAiPersona")}
            <select
              className="input mt-1"
              value={aiPersona}
              onChange={(e) => setAiPersona(e.target.value)}
              disabled={!aiConfig}
              data-testid="room-ai-persona"
            >
              <option value="">{t("roomAiNoPersona")}</option>
              {personas.map((p) => (
                <option key={p.id.toString()} value={p.id.toString()}>
                  {p.name}
                </option>
              ))}
            </select>
          </label>
          <p className="text-xs text-gray-500">{room.aiEnabled ? t("roomAiEnabledHint") : t("roomAiHint")}</p>
          <button type="button" className="btn-secondary" onClick={() => void saveAi()}>
            {t("roomAiApply")}
          </button>
        </div>
      )}
      {error && (
        <p role="alert" className="alert-error mt-3">
          {error}
        </p>
      )}
      <div className="mt-4 flex justify-between gap-2 border-t border-gray-200 pt-4">
        {isOwner ? (
          <button type="button" className="btn-danger" onClick={() => setDeleting(true)}>
            {t("deleteRoom")}
          </button>
        ) : (
          <span />
        )}
        <button type="button" className="btn-secondary" onClick={onClose}>
          {t("close")}
        </button>
      </div>
      {deleting && (
        <ConfirmModal
          open
          title={t("deleteRoom")}
          message={t("deleteRoomConfirm", { room: room.name })}
          confirmLabel={t("delete")}
          cancelLabel={t("cancel")}
          onConfirm={() => void remove()}
          onClose={() => setDeleting(false)}
        />
      )}
    </Modal>
  );
}

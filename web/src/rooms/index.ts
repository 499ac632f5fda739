// The rooms UI, one chunk fetched once signed in (the sign-in page loads none of it).
export { default as RoomsSection } from "./RoomsSection";
export { default as RoomView, RoomJoin } from "./RoomView";
export { default as NotificationBell } from "./NotificationBell";
export { default as NotificationSettingsPanel } from "./NotificationSettingsPanel";

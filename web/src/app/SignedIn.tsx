// The app behind the sign-in: its own chunk, so the sign-in page downloads none of it (App.tsx
// fetches it early on a device that was signed in last time).
import type { Api } from "../api/client";
import type { User } from "../gen/parley/user/v1/user_pb";
import { StoreProvider } from "./store";
import { Shell } from "../layout/Shell";

export default function SignedIn({ api, user }: { api: Api; user: User }) {
  return (
    <StoreProvider api={api} user={user}>
      <Shell />
    </StoreProvider>
  );
}

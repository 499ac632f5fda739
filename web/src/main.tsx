import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./app/App";
import "./index.css";
import { startTheme } from "./ui/theme";
import { api } from "./app/session";
import { startPreload } from "./app/preload";

// Before the first paint: no flash of the light page for a dark system.
startTheme();
// Before the first render: a signed-in device's session, app chunk and open chat are on their way.
startPreload(api);

const root = document.getElementById("root");
if (root) {
  createRoot(root).render(
    <StrictMode>
      <App />
    </StrictMode>,
  );
}

import { defineConfig } from "vitest/config";

// `npm run lighthouse`: Lighthouse against the real stack (see e2e/lighthouse.measure.ts).
// Its output is the figures, printed as they come.
export default defineConfig({
  test: {
    environment: "node",
    include: ["e2e/lighthouse.measure.ts"],
    hookTimeout: 120_000,
    disableConsoleIntercept: true,
  },
});

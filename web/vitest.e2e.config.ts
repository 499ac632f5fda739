import { defineConfig } from "vitest/config";

// End-to-end tests: the real stack (parley + fake provider) on random ports, driven in a real
// headless Chromium. One file at a time: they share the machine's two cores with the stack.
export default defineConfig({
  test: {
    environment: "node",
    include: ["e2e/**/*.e2e.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});

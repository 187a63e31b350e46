import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    // Every file opens its own device; lavapipe already spreads one device over all cores, so files run one at a time.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // A developer's own tuning cache must not change which kernel versions the tests run by default.
    env: { PEFT_TUNE: "0" },
  },
});

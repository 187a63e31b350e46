// Stops the whole suite at once, with the set-up instruction, when there is no WebGPU adapter:
// GPU tests are never skipped silently.
import { create, globals } from "webgpu";

export default async function (): Promise<void> {
  Object.assign(globalThis, globals);
  const gpu = create(process.env.PEFT_BACKEND ? [`backend=${process.env.PEFT_BACKEND}`] : []);
  const adapter = await gpu.requestAdapter();
  if (!adapter) {
    throw new Error(
      "no WebGPU adapter: the tests run on a GPU or on the CPU through Mesa's lavapipe. Run `npm run setup` first " +
        "(on Debian 12 it installs libvulkan1 and mesa-vulkan-drivers from bookworm-backports).",
    );
  }
}

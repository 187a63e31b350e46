// engine/settings.ts: the environment, parsed once into typed values.
import { describe, expect, it } from "vitest";
import { join } from "node:path";
import { homedir } from "node:os";
import { readSettings } from "../../engine/settings.js";

describe("readSettings", () => {
  it("gives the defaults for an empty environment", () => {
    const s = readSettings({});
    expect(s).toEqual({
      backend: undefined,
      adapter: undefined,
      wait: "quiet",
      tune: true,
      replay: true,
      tuneCacheDir: join(homedir(), ".cache", "peft-vit-webgpu"),
      imageCacheBytes: 1024 * 2 ** 20,
      debug: 0,
      versions: {},
      llvmpipeThreads: undefined,
      vulkanDataDirs: ["/etc/xdg", "/etc", "/usr/local/share", "/usr/share"],
      deviceSelectOff: false,
      dawnToggles: [],
      threadpool: undefined,
      slurm: undefined,
    });
  });

  it("lists the Vulkan loader's layer folders from the XDG variables and HOME", () => {
    const s = readSettings({ XDG_CONFIG_DIRS: "/c1:/c2", XDG_DATA_DIRS: "/d1", HOME: "/home/u" });
    expect(s.vulkanDataDirs).toEqual(["/c1", "/c2", "/etc", "/d1", "/home/u/.local/share"]);
    expect(readSettings({ XDG_DATA_HOME: "/x", HOME: "/home/u" }).vulkanDataDirs.at(-1)).toBe("/x");
    expect(readSettings({ NODEVICE_SELECT: "1" }).deviceSelectOff).toBe(true);
  });

  it("reads the wait policy, and refuses a bad one naming the variable", () => {
    expect(readSettings({ PEFT_WAIT: "spin" }).wait).toBe("spin");
    expect(readSettings({ PEFT_WAIT: "busy" }).wait).toBe("busy");
    expect(() => readSettings({ PEFT_WAIT: "nap" })).toThrow('PEFT_WAIT: expected one of quiet, spin, busy, got "nap"');
  });

  it("finds the tuning cache in PEFT_TUNE_CACHE, else under XDG_CACHE_HOME, and PEFT_TUNE=0 turns it off", () => {
    expect(readSettings({ PEFT_TUNE_CACHE: "/t/c" }).tuneCacheDir).toBe("/t/c");
    expect(readSettings({ XDG_CACHE_HOME: "/x/cache" }).tuneCacheDir).toBe("/x/cache/peft-vit-webgpu");
    expect(readSettings({ PEFT_TUNE: "0" }).tune).toBe(false);
    expect(readSettings({ PEFT_TUNE: "1" }).tune).toBe(true);
  });

  it("refuses a PEFT_TUNE other than 0 or 1, naming the variable, rather than leave tuning on", () => {
    for (const bad of ["false", "garbage", "off", ""]) {
      expect(() => readSettings({ PEFT_TUNE: bad })).toThrow(`PEFT_TUNE: expected 0 or 1, got "${bad}"`);
    }
  });

  it("replays training steps unless PEFT_REPLAY=0, and refuses another value naming the variable", () => {
    expect(readSettings({ PEFT_REPLAY: "0" }).replay).toBe(false);
    expect(readSettings({ PEFT_REPLAY: "1" }).replay).toBe(true);
    expect(readSettings({ PEFT_REPLAY: "0" }).versions).toEqual({}); // a setting, not a family
    expect(() => readSettings({ PEFT_REPLAY: "yes" })).toThrow('PEFT_REPLAY: expected 0 or 1, got "yes"');
  });

  it("reads the image cache's budget in megabytes, 0 for none, and refuses another value naming the variable", () => {
    expect(readSettings({ PEFT_IMAGE_CACHE_MB: "0" }).imageCacheBytes).toBe(0);
    expect(readSettings({ PEFT_IMAGE_CACHE_MB: "1.5" }).imageCacheBytes).toBe(1.5 * 2 ** 20);
    expect(readSettings({ PEFT_IMAGE_CACHE_MB: "64" }).versions).toEqual({}); // a setting, not a family
    for (const bad of ["", "-1", "1e3", "lots"]) {
      expect(() => readSettings({ PEFT_IMAGE_CACHE_MB: bad })).toThrow(`PEFT_IMAGE_CACHE_MB: expected megabytes >= 0, got "${bad}"`);
    }
  });

  it("takes every other PEFT_ variable as a kernel family's version, and DEBUG as a level", () => {
    const s = readSettings({ PEFT_MATMUL: "reg8x8", PEFT_ROWS: "tree", PEFT_BACKEND: "vulkan", DEBUG: "2", LP_NUM_THREADS: "3" });
    expect(s.versions).toEqual({ matmul: { value: "reg8x8", variable: "PEFT_MATMUL" }, rows: { value: "tree", variable: "PEFT_ROWS" } });
    expect(s.backend).toBe("vulkan");
    expect(s.debug).toBe(2);
    expect(readSettings({ DEBUG: "1" }).debug).toBe(1);
    expect(readSettings({ DEBUG: "0" }).debug).toBe(0);
    expect(s.llvmpipeThreads).toBe("3");
    expect(readSettings({ UV_THREADPOOL_SIZE: "8" }).threadpool).toBe(8);
  });

  it("refuses a PEFT_ name that is neither a setting nor a kernel family, naming it and listing the known ones", () => {
    for (const typo of ["PEFT_BAKEND", "PEFT_MATMULL", "PEFT_"]) {
      expect(() => readSettings({ [typo]: "null" })).toThrow(
        `${typo}: unknown variable; expected one of PEFT_BACKEND, PEFT_ADAPTER, PEFT_WAIT, PEFT_TUNE, PEFT_TUNE_CACHE, PEFT_DAWN_TOGGLES, ` +
          "PEFT_REPLAY, PEFT_IMAGE_CACHE_MB or a kernel family's PEFT_MATMUL, PEFT_ROWS, PEFT_ATTENTION, PEFT_KNN (docs/RUNNING.md)",
      );
    }
  });

  it("reads UV_THREADPOOL_SIZE as a thread count from 1 to 1024, and refuses what libuv would misread, naming it", () => {
    expect(readSettings({ UV_THREADPOOL_SIZE: "1024" }).threadpool).toBe(1024);
    for (const bad of ["abc", "8x", "0", "08", "1025", ""]) {
      expect(() => readSettings({ UV_THREADPOOL_SIZE: bad })).toThrow(`UV_THREADPOOL_SIZE: expected a number of threads from 1 to 1024, got "${bad}"`);
    }
  });

  it("reads Dawn toggles to enable, comma-separated, and refuses what is no toggle name, naming the variable", () => {
    expect(readSettings({ PEFT_DAWN_TOGGLES: "vulkan_enable_f16_on_nvidia, dump_shaders" }).dawnToggles).toEqual(["vulkan_enable_f16_on_nvidia", "dump_shaders"]);
    expect(readSettings({ PEFT_DAWN_TOGGLES: "vulkan_enable_f16_on_nvidia" }).versions).toEqual({}); // a setting, not a family
    expect(() => readSettings({ PEFT_DAWN_TOGGLES: "a=b" })).toThrow('PEFT_DAWN_TOGGLES: expected Dawn toggle names (lower case, digits, _), comma-separated, got "a=b"');
  });

  it("names the Slurm job and array task a process runs in", () => {
    expect(readSettings({ SLURM_JOB_ID: "17", SLURM_ARRAY_JOB_ID: "15", SLURM_ARRAY_TASK_ID: "3" }).slurm).toEqual({ jobId: "17", arrayJobId: "15", arrayTaskId: "3" });
    expect(readSettings({ SLURM_JOB_ID: "17" }).slurm).toEqual({ jobId: "17", arrayJobId: undefined, arrayTaskId: undefined });
  });
});

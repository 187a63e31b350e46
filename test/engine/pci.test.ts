// engine/pci.ts: choosing one of several identical GPUs by PCI address, through Mesa's device-select layer.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deviceSelectLayerPresent, driPrimeTag, pciAddress, pciDisplayDevices, pciSelection } from "../../engine/pci.js";

let root: string;

// A sysfs-like tree: two identical NVIDIA GPUs, a VGA controller, a network card and a device without a class file.
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "pci-test-"));
  const device = async (address: string, cls: string | undefined, vendor: string, id: string) => {
    await mkdir(join(root, "sys", address), { recursive: true });
    if (cls) await writeFile(join(root, "sys", address, "class"), `${cls}\n`);
    await writeFile(join(root, "sys", address, "vendor"), `${vendor}\n`);
    await writeFile(join(root, "sys", address, "device"), `${id}\n`);
  };
  await device("0000:c1:00.0", "0x030200", "0x10de", "0x2335");
  await device("0000:41:00.0", "0x030200", "0x10DE", "0x2335");
  await device("0000:00:02.0", "0x030000", "0x1234", "0x1111");
  await device("0000:00:03.0", "0x020000", "0x8086", "0x100e");
  await device("0000:00:04.0", undefined, "0x8086", "0x1000");
  await mkdir(join(root, "share", "vulkan", "implicit_layer.d"), { recursive: true });
  await writeFile(join(root, "share", "vulkan", "implicit_layer.d", "VkLayer_MESA_device_select.json"), "{}");
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("pciAddress", () => {
  it("reads pci:DDDD:BB:DD.F and pci:BB:DD.F (domain 0000), in any case; other choices are not addresses", () => {
    expect(pciAddress("pci:0000:41:00.0")).toBe("0000:41:00.0");
    expect(pciAddress("PCI:C1:00.0")).toBe("0000:c1:00.0");
    expect(pciAddress("nvidia")).toBeUndefined();
    expect(pciAddress("llvmpipe")).toBeUndefined();
  });

  it("refuses a malformed address, naming the form it expects", () => {
    for (const bad of ["pci:41:00", "pci:0000:41:00.8", "pci:", "pci:zz:00.0"]) {
      expect(() => pciAddress(bad), bad).toThrow(/expected a PCI address as pci:DDDD:BB:DD.F .*got "pci:/);
    }
  });
});

describe("pciDisplayDevices", () => {
  it("lists the display controllers (class 0x03) by address, lower case, skipping others", () => {
    expect(pciDisplayDevices(join(root, "sys"))).toEqual([
      { address: "0000:00:02.0", vendor: "1234", device: "1111" },
      { address: "0000:41:00.0", vendor: "10de", device: "2335" },
      { address: "0000:c1:00.0", vendor: "10de", device: "2335" },
    ]);
  });

  it("finds none where there is no PCI bus folder", () => {
    expect(pciDisplayDevices(join(root, "absent"))).toEqual([]);
  });
});

describe("pciSelection", () => {
  const devices = () => pciDisplayDevices(join(root, "sys"));

  it("gives DRI_PRIME's tag that exposes only that device, in the layer's own format", () => {
    expect(driPrimeTag("0000:41:00.0")).toBe("pci-0000_41_00_0!");
    expect(pciSelection("0000:c1:00.0", devices(), true)).toBe("pci-0000_c1_00_0!");
  });

  it("refuses an address with no display device, listing the ones there are", () => {
    expect(() => pciSelection("0000:42:00.0", devices(), true)).toThrow(
      "device: no display device at PCI address 0000:42:00.0; there are pci:0000:00:02.0 (1234:1111), pci:0000:41:00.0 (10de:2335), pci:0000:c1:00.0 (10de:2335)",
    );
    expect(() => pciSelection("0000:42:00.0", [], true)).toThrow("this machine has none on its PCI bus");
  });

  it("refuses when Mesa's device-select layer is not installed, naming its manifest and package", () => {
    expect(() => pciSelection("0000:41:00.0", devices(), false)).toThrow(/VkLayer_MESA_device_select.json.*mesa-vulkan-drivers/);
  });

  it("finds the layer's manifest in any of the loader's folders", () => {
    expect(deviceSelectLayerPresent([join(root, "absent"), join(root, "share")])).toBe(true);
    expect(deviceSelectLayerPresent([join(root, "absent")])).toBe(false);
  });
});

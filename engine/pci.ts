// GPUs by PCI address: how one of several identical GPUs is chosen.
//
// Dawn's Node binding picks the first adapter whose name contains `adapter=` and offers no choice by index, so
// eight "NVIDIA H200"s are one name. Below Dawn, Mesa's Vulkan device-select layer (an implicit layer installed with
// mesa-vulkan-drivers, wrapping every driver's devices, NVIDIA's included) reads DRI_PRIME when the Vulkan instance
// is created: `pci-DDDD_BB_DD_F!` puts the device at that PCI address first and, with the `!`, hides every other
// one, so Dawn sees one adapter. engine/device.ts sets it for an adapter choice `pci:DDDD:BB:DD.F`, and
// `experiment --workers N --adapters each-gpu` gives worker i the i-th GPU found here.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

export interface PciDevice {
  address: string; // DDDD:BB:DD.F, lower case
  vendor: string; // PCI vendor id, e.g. "10de" (NVIDIA)
  device: string; // PCI device id
}

const ADDRESS = /^(?:([0-9a-f]{4}):)?([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/;

// The PCI address in an adapter choice "pci:BB:DD.F" or "pci:DDDD:BB:DD.F" (domain 0000 when left out), normalised;
// undefined for any other choice (a description substring).
export function pciAddress(choice: string): string | undefined {
  if (!choice.toLowerCase().startsWith("pci:")) return undefined;
  const m = ADDRESS.exec(choice.slice(4).toLowerCase());
  if (!m) throw new Error(`device: expected a PCI address as pci:DDDD:BB:DD.F (e.g. pci:0000:41:00.0), got "${choice}"`);
  return `${m[1] ?? "0000"}:${m[2]}:${m[3]}.${m[4]}`;
}

// DRI_PRIME's value that makes the device-select layer expose only the device at `address`.
export function driPrimeTag(address: string): string {
  const [domain, bus, rest] = address.split(":");
  const [dev, fn] = rest.split(".");
  return `pci-${domain}_${bus}_${dev}_${fn}!`;
}

// The display controllers (PCI class 0x03: VGA, 3D, other) on the PCI bus, by address.
export function pciDisplayDevices(root = "/sys/bus/pci/devices"): PciDevice[] {
  if (!existsSync(root)) return [];
  const read = (dir: string, file: string) => readFileSync(join(root, dir, file), "utf8").trim().toLowerCase();
  const out: PciDevice[] = [];
  for (const dir of readdirSync(root).sort()) {
    try {
      if (!read(dir, "class").startsWith("0x03")) continue;
      out.push({ address: dir.toLowerCase(), vendor: read(dir, "vendor").replace(/^0x/, ""), device: read(dir, "device").replace(/^0x/, "") });
    } catch {
      continue; // a device without these files is not one to choose
    }
  }
  return out;
}

// Where the Vulkan loader looks for implicit layers on Linux (its LoaderLayerInterface document): the manifest of
// Mesa's device-select layer in one of them means the layer is there to read DRI_PRIME.
export function deviceSelectLayerPresent(dataDirs: string[]): boolean {
  return dataDirs.some((d) => existsSync(join(d, "vulkan", "implicit_layer.d", "VkLayer_MESA_device_select.json")));
}

// Why `address` names no display device on this machine (listing those it has), or undefined where it does: checked
// by the device at start-up and, before any work, by `experiment --adapters`.
export function pciDeviceMissing(address: string, devices: PciDevice[]): string | undefined {
  if (devices.some((d) => d.address === address)) return undefined;
  const list = devices.map((d) => `pci:${d.address} (${d.vendor}:${d.device})`).join(", ");
  return `no display device at PCI address ${address}; ${list ? `there are ${list}` : "this machine has none on its PCI bus"} (node dist/run.js info lists them)`;
}

// The DRI_PRIME value for a `pci:` choice, after checking that a display device is at that address and that the
// layer is installed; the errors list what there is to choose from.
export function pciSelection(address: string, devices: PciDevice[], layerPresent: boolean): string {
  const missing = pciDeviceMissing(address, devices);
  if (missing) throw new Error(`device: ${missing}`);
  if (!layerPresent) {
    throw new Error(
      `device: choosing a GPU by PCI address (pci:${address}) needs Mesa's Vulkan device-select layer (VkLayer_MESA_device_select.json, ` +
        "in Debian's mesa-vulkan-drivers), which was not found in the Vulkan implicit layer folders or is switched off by NODEVICE_SELECT",
    );
  }
  return driPrimeTag(address);
}

/**
 * Which kind of KVM drives the guest. On kvm_pvm (software virtualization)
 * guest CPL 0 code is emulated and `syscall` stays at CPL 3, so the whole
 * guest runs at CPL 3. On hardware KVM (VT-x / AMD-V) `syscall` enters
 * CPL 0, so the whole guest runs at CPL 0, as HermiTux does: one privilege
 * level either way, and the same guest kernel code.
 * @module
 */

/** The KVM implementations hermitux knows. */
export type Platform = "kvm_pvm" | "vmx" | "svm";

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Detects the platform from the loaded KVM module; `HERMITUX_PLATFORM`
 * overrides it. Falls back to the CPU flags when /sys is not visible.
 */
export function detectPlatform(): Platform {
  const forced = Deno.env.get("HERMITUX_PLATFORM");
  if (forced === "kvm_pvm" || forced === "vmx" || forced === "svm") return forced;
  if (exists("/sys/module/kvm_pvm")) return "kvm_pvm";
  if (exists("/sys/module/kvm_amd")) return "svm";
  if (exists("/sys/module/kvm_intel")) return "vmx";
  try {
    const flags = Deno.readTextFileSync("/proc/cpuinfo");
    if (/^flags\s*:.*\bsvm\b/m.test(flags)) return "svm";
    if (/^flags\s*:.*\bvmx\b/m.test(flags)) return "vmx";
  } catch { /* no /proc: assume the conservative path */ }
  return "kvm_pvm";
}

/** The privilege level the guest (kernel and application alike) runs at. */
export function guestCpl(p: Platform): 0 | 3 {
  return p === "kvm_pvm" ? 3 : 0;
}

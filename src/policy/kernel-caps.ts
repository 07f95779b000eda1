/**
 * What the running kernel offers that a policy may need beyond tracepoints.
 * The agent fills it from the feature probe; the validator refuses a policy
 * that needs what is false, naming the missing feature.
 */
import type { Features } from '../kernel/features.js';

export interface KernelCapabilities {
  /** kprobes/kretprobes on kernel functions (CONFIG_KPROBES) */
  kprobes: boolean;
  /** BPF-LSM programs load and "bpf" is an active LSM */
  bpfLsm: boolean;
  /** fentry/fexit programs load */
  fentry: boolean;
  /** bpf_override_return (CONFIG_BPF_KPROBE_OVERRIDE, and kprobes) */
  overrideReturn: boolean;
}

/** Nothing beyond tracepoints: what the machines Osprey is built on offer. */
export const NO_EXTRA_KERNEL_FEATURES: Readonly<KernelCapabilities> = Object.freeze({
  kprobes: false,
  bpfLsm: false,
  fentry: false,
  overrideReturn: false,
});

/** The missing feature, as refusals name it. */
export const FEATURE_NAMES: Readonly<Record<keyof KernelCapabilities, string>> = {
  kprobes: 'kprobes (CONFIG_KPROBES)',
  bpfLsm: 'BPF-LSM (CONFIG_BPF_LSM and "bpf" in the lsm= boot list)',
  fentry: 'fentry/fexit programs (BPF trampolines)',
  overrideReturn: 'bpf_override_return (CONFIG_BPF_KPROBE_OVERRIDE, on kprobes)',
};

/**
 * Capabilities from the feature probe. The probe does not test fentry
 * attachment (tp_btf loads where fentry gets EPERM), so fentry stays false
 * until it does.
 */
export function kernelCapabilities(f: Features): KernelCapabilities {
  return {
    kprobes: f.kprobes,
    bpfLsm: f.bpfLsm && f.progTypes.lsm === true,
    fentry: false,
    overrideReturn: f.kprobes && f.helpers.override_return === true,
  };
}

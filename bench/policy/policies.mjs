// The TracingPolicies the benchmark loads. Paths are the run's scratch
// directories, so a policy can only ever match what the benchmark opens.

/** openat with a Prefix filter on the path, action Post: the file-monitoring shape of Tetragon's examples. */
export function openatPrefixPolicy(name, prefix) {
  return `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: ${name}
spec:
  kprobes:
  - call: sys_openat
    syscall: true
    args:
    - index: 0
      type: int
    - index: 1
      type: string
    - index: 2
      type: int
    selectors:
    - matchArgs:
      - index: 1
        operator: Prefix
        values:
        - "${prefix}"
      matchActions:
      - action: Post
`;
}

/**
 * A typical policy for the add-latency measurement: three syscall hooks,
 * four selectors, string, mask and integer filters and binary filters (which
 * share the process sensor's table). The second openat selector matches the
 * benchmark's trigger file, so each add can be checked to be in force the
 * moment it returns.
 */
export function typicalPolicy(name, triggerPrefix) {
  return `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: ${name}
spec:
  kprobes:
  - call: sys_openat
    syscall: true
    args:
    - index: 0
      type: int
    - index: 1
      type: string
    - index: 2
      type: int
    selectors:
    - matchArgs:
      - index: 1
        operator: Prefix
        values: ["/etc/shadow", "/etc/sudoers", "/root/.ssh/"]
      - index: 2
        operator: Mask
        values: ["1", "2", "64"]
      matchBinaries:
      - operator: NotIn
        values: ["/usr/bin/dpkg", "/usr/bin/apt-get"]
      matchActions:
      - action: Post
    - matchArgs:
      - index: 1
        operator: Prefix
        values: ["${triggerPrefix}"]
      matchActions:
      - action: Post
  - call: sys_unlinkat
    syscall: true
    args:
    - index: 1
      type: string
    selectors:
    - matchArgs:
      - index: 1
        operator: Prefix
        values: ["/var/log/", "/etc/"]
      matchActions:
      - action: Post
  - call: sys_setuid
    syscall: true
    args:
    - index: 0
      type: int
    selectors:
    - matchArgs:
      - index: 0
        operator: Equal
        values: ["0"]
      matchBinaries:
      - operator: NotIn
        values: ["/usr/bin/sudo", "/usr/bin/su"]
      matchActions:
      - action: Post
`;
}

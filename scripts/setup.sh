#!/usr/bin/env bash
# Idempotent set-up: system packages, npm packages, the BPF objects, the
# native addon, the TypeScript build, and the kernel file systems Osprey uses.
# Safe to run again; it only does what is missing or out of date.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1mosprey setup:\033[0m %s\n' "$*" >&2; }
die() { printf 'osprey setup: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (loading BPF programs needs CAP_BPF/CAP_SYS_ADMIN)"

# 1. system packages (Debian)
APT_PKGS=(clang-19 llvm-19 libbpf-dev libelf-dev zlib1g-dev bpftool make g++ python3 pkg-config iproute2 chromium)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get to install them"
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v node >/dev/null || die "Node.js 20 or newer is needed (https://nodejs.org or your distribution's nodejs package)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "Node.js $(node -v) is too old: Osprey needs 20 or newer"

# 2. npm packages; their install step builds the native addon (binding.gyp)
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.osprey-lock 2>/dev/null)" != "$lock_hash" ]; then
  say "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$lock_hash" > node_modules/.osprey-lock
fi

# 3. native addon (rebuilt when its source is newer than the module)
if [ ! -f build/Release/osprey.node ] || [ native/osprey.cc -nt build/Release/osprey.node ] || [ binding.gyp -nt build/Release/osprey.node ]; then
  say "building the native addon"
  npm run --silent install >&2
fi

# 4. kernel programs (CO-RE, against this kernel's BTF)
[ -r /sys/kernel/btf/vmlinux ] || die "this kernel has no BTF (/sys/kernel/btf/vmlinux); Osprey needs CONFIG_DEBUG_INFO_BTF=y"
make -s >&2

# 5. TypeScript
if [ ! -f dist/src/cli/main.js ] || [ -n "$(find src test bench web tsconfig.json -newer dist/.built -print -quit 2>/dev/null || echo x)" ]; then
  say "compiling TypeScript"
  npx --no-install tsc -p tsconfig.json
  touch dist/.built
fi
# the client commands bundled as one CommonJS file, which Node starts sooner (scripts/bundle-cli.mjs)
if [ ! dist/src/cli/osprey-cli.cjs -nt dist/src/cli/main.js ]; then
  say "bundling the CLI"
  node scripts/bundle-cli.mjs
fi

# 6. file systems the agent needs (the agent checks again at start)
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing
mountpoint -q /sys/kernel/security || mount -t securityfs securityfs /sys/kernel/security 2>/dev/null || true

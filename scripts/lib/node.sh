# Sourced by scripts/run and scripts/test: makes a Node.js new enough for the web client's build
# (Vite needs 20.19+ or 22.12+) the first `node` and `npm` on PATH. The one installed is used if
# it is new enough; otherwise Node.js is downloaded from the npm package registry, where each
# release's Linux build is published as the package `node-linux-<arch>` (the binary, without
# npm) and npm as the package `npm`. Each download is checked against the registry's integrity
# hash (SHA-512) before anything is unpacked into .cache/node in the repository (or
# LABBOARD_NODE_CACHE), where later runs find it.
#
# Settings (environment):
#   LABBOARD_NODE_VERSION  the Node.js version to download (default below)
#   LABBOARD_NPM_VERSION   the npm version to go with it (default below: the one Node.js bundles)
#   LABBOARD_NODE_REGISTRY the registry (default: npm's configured one if npm is installed, else
#                          https://registry.npmjs.org)
#   LABBOARD_NODE_CACHE    where to unpack them (default <repository>/.cache/node)

LABBOARD_NODE_DEFAULT_VERSION=22.12.0
LABBOARD_NPM_DEFAULT_VERSION=10.9.2

# Whether a Node.js version string (as `node --version` prints it, e.g. v20.19.1) is new enough.
node_version_ok() {
  local version=${1#v} major minor
  major=${version%%.*}
  minor=${version#*.}
  minor=${minor%%.*}
  case "$major$minor" in '' | *[!0-9]*) return 1 ;; esac
  if [ "$major" -eq 20 ]; then [ "$minor" -ge 19 ]
  elif [ "$major" -eq 22 ]; then [ "$minor" -ge 12 ]
  else [ "$major" -ge 23 ]
  fi
}

# The architecture name of Node.js's Linux builds for this machine.
node_arch() {
  case "$(uname -m)" in
    x86_64 | amd64) echo x64 ;;
    aarch64 | arm64) echo arm64 ;;
    armv7l) echo armv7l ;;
    ppc64le) echo ppc64le ;;
    s390x) echo s390x ;;
    *) echo "no official Node.js build for $(uname -m); install Node.js 20.19+ or 22.12+ yourself" >&2
       return 1 ;;
  esac
}

# Downloads $1 to the file $2.
node_fetch() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --retry 3 -o "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then
    wget -q -O "$2" "$1"
  else
    echo "neither curl nor wget is installed: install one (apt-get install curl) or Node.js 20.19+" >&2
    return 1
  fi
}

# The value of the string field $1 in the JSON file $2 (the registry's package metadata).
node_json_field() {
  tr -d '\n' <"$2" | grep -o "\"$1\" *: *\"[^\"]*\"" | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/'
}

# Whether the file $1 matches the registry's integrity string $2 (`sha512-<base64>`).
node_integrity_ok() {
  local hex b64
  hex=$(sha512sum "$1" | cut -d' ' -f1)
  b64=$(printf '%b' "$(printf '%s' "$hex" | sed 's/../\\x&/g')" | base64 -w0)
  [ -n "$2" ] && [ "sha512-$b64" = "$2" ]
}

# Downloads package $1 at version $2 from registry $3, checks it, and unpacks it to the
# directory $4 (the package's files, without the tarball's top folder).
node_registry_fetch() {
  local work="$4.partial"
  rm -rf "$work"
  mkdir -p "$work"
  if ! node_fetch "$3/$1/$2" "$work/meta.json"; then
    echo "could not read $1@$2 from $3" >&2
    rm -rf "$work"
    return 1
  fi
  local tarball integrity
  tarball=$(node_json_field tarball "$work/meta.json")
  integrity=$(node_json_field integrity "$work/meta.json")
  if [ -z "$tarball" ] || [ -z "$integrity" ] || ! node_fetch "$tarball" "$work/package.tgz"; then
    echo "could not download $1@$2 from $3" >&2
    rm -rf "$work"
    return 1
  fi
  if ! node_integrity_ok "$work/package.tgz" "$integrity"; then
    echo "the download of $1@$2 does not match the registry's integrity hash; nothing was installed" >&2
    rm -rf "$work"
    return 1
  fi
  if ! tar -xzf "$work/package.tgz" -C "$work" || [ ! -d "$work/package" ]; then
    echo "could not unpack $1@$2" >&2
    rm -rf "$work"
    return 1
  fi
  rm -rf "$4"
  mv "$work/package" "$4"
  rm -rf "$work"
}

# Puts a new-enough node and npm first on PATH, downloading Node.js if needed.
ensure_node() {
  local found configured
  if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    found=$(node --version 2>/dev/null || true)
    if node_version_ok "$found"; then
      return 0
    fi
    echo "Node.js ${found:-of unknown version} is too old for the web client's build (needs 20.19+ or 22.12+)" >&2
    configured=$(npm config get registry 2>/dev/null || true)
  fi
  local version=${LABBOARD_NODE_VERSION:-$LABBOARD_NODE_DEFAULT_VERSION}
  local npm_version=${LABBOARD_NPM_VERSION:-$LABBOARD_NPM_DEFAULT_VERSION}
  local registry=${LABBOARD_NODE_REGISTRY:-${configured:-https://registry.npmjs.org}}
  registry=${registry%/}
  local cache=${LABBOARD_NODE_CACHE:-$(pwd)/.cache/node}
  local arch
  arch=$(node_arch) || return 1
  local home="$cache/node-v$version-npm-$npm_version-linux-$arch"
  if [ ! -x "$home/bin/node" ] || [ ! -x "$home/bin/npm" ]; then
    echo "downloading Node.js $version and npm $npm_version ($arch) from $registry into $cache" >&2
    mkdir -p "$cache"
    local work="$home.new"
    rm -rf "$work"
    mkdir -p "$work/lib/node_modules"
    if ! node_registry_fetch "node-linux-$arch" "$version" "$registry" "$work/node" ||
      ! node_registry_fetch npm "$npm_version" "$registry" "$work/lib/node_modules/npm" ||
      [ ! -x "$work/node/bin/node" ]; then
      rm -rf "$work"
      return 1
    fi
    mkdir -p "$work/bin"
    mv "$work/node/bin/node" "$work/bin/node"
    rm -rf "$work/node"
    local tool
    for tool in npm npx; do
      printf '#!/bin/sh\nhere=$(dirname "$(readlink -f "$0")")\nexec "$here/node" "$here/../lib/node_modules/npm/bin/%s-cli.js" "$@"\n' "$tool" >"$work/bin/$tool"
      chmod +x "$work/bin/$tool"
    done
    rm -rf "$home"
    mv "$work" "$home"
  fi
  PATH="$home/bin:$PATH"
  export PATH
  # Like the distribution's own Node.js, trust the system's certificate authorities too (a
  # district's TLS-inspecting proxy has its CA there), not only the ones Node.js bundles.
  if [ -z "${NODE_EXTRA_CA_CERTS:-}" ] && [ -r /etc/ssl/certs/ca-certificates.crt ]; then
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
    export NODE_EXTRA_CA_CERTS
  fi
  found=$(node --version 2>/dev/null || true)
  if ! node_version_ok "$found"; then
    echo "Node.js in $home reports version ${found:-none}, not new enough" >&2
    return 1
  fi
}

# Sourced by scripts/run and scripts/test: makes a Node.js new enough for the web client's build
# (Vite needs 20.19+ or 22.12+) the first `node` and `npm` on PATH. The one installed is used if
# it is new enough; otherwise the official Linux build of Node.js is downloaded from nodejs.org
# (or LABBOARD_NODE_MIRROR), its SHA-256 checked against the release's SHASUMS256.txt, and
# unpacked into .cache/node in the repository (or LABBOARD_NODE_CACHE), where later runs find it.
#
# Settings (environment):
#   LABBOARD_NODE_VERSION  the version to download (default below)
#   LABBOARD_NODE_MIRROR   where releases are (default https://nodejs.org/dist)
#   LABBOARD_NODE_CACHE    where to unpack them (default <repository>/.cache/node)

LABBOARD_NODE_DEFAULT_VERSION=22.12.0

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

# Puts a new-enough node and npm first on PATH, downloading Node.js if needed.
ensure_node() {
  local found
  if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    found=$(node --version 2>/dev/null || true)
    if node_version_ok "$found"; then
      return 0
    fi
    echo "Node.js ${found:-of unknown version} is too old for the web client's build (needs 20.19+ or 22.12+)" >&2
  fi
  local version=${LABBOARD_NODE_VERSION:-$LABBOARD_NODE_DEFAULT_VERSION}
  local mirror=${LABBOARD_NODE_MIRROR:-https://nodejs.org/dist}
  local cache=${LABBOARD_NODE_CACHE:-$(pwd)/.cache/node}
  local arch
  arch=$(node_arch) || return 1
  local name="node-v$version-linux-$arch"
  if [ ! -x "$cache/$name/bin/node" ]; then
    echo "downloading Node.js $version ($arch) into $cache" >&2
    mkdir -p "$cache"
    local work
    work=$(mktemp -d "$cache/.download.XXXXXX")
    if ! node_fetch "$mirror/v$version/SHASUMS256.txt" "$work/SHASUMS256.txt" ||
      ! node_fetch "$mirror/v$version/$name.tar.gz" "$work/$name.tar.gz"; then
      rm -rf "$work"
      echo "could not download Node.js $version from $mirror" >&2
      return 1
    fi
    if ! grep " $name.tar.gz\$" "$work/SHASUMS256.txt" >"$work/expected" ||
      ! (cd "$work" && sha256sum --check --status expected); then
      rm -rf "$work"
      echo "the download of $name.tar.gz does not match its SHASUMS256.txt; nothing was installed" >&2
      return 1
    fi
    if ! tar -xzf "$work/$name.tar.gz" -C "$work" || [ ! -x "$work/$name/bin/node" ]; then
      rm -rf "$work"
      echo "could not unpack $name.tar.gz" >&2
      return 1
    fi
    rm -rf "${cache:?}/$name"
    mv "$work/$name" "$cache/$name"
    rm -rf "$work"
  fi
  PATH="$cache/$name/bin:$PATH"
  export PATH
  found=$(node --version 2>/dev/null || true)
  if ! node_version_ok "$found"; then
    echo "Node.js in $cache/$name reports version ${found:-none}, not new enough" >&2
    return 1
  fi
}

#!/usr/bin/env bash
# Provides a free-threaded CPython 3.13 (3.13t, PEP 703) for CI and prints its interpreter's
# path on the last line of stdout. PyPI and Debian are the only registries CI reaches, so it is
# built from Debian's own source package (upstream 3.13.5), checked against a pinned sha256.
# The build is cached under $MINIONS_PY313T_PREFIX (default /var/cache/minions-ci/cpython-3.13.5t)
# and reused while it runs with the GIL off; the system's apt setup is never touched (a private
# apt configuration in a throwaway directory reads the trixie source index).
# About 9 minutes on 2 cores the first time; seconds afterwards.
set -euo pipefail

VERSION=3.13.5
ORIG="python3.13_${VERSION}.orig.tar.xz"
SHA256=93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640
PREFIX="${MINIONS_PY313T_PREFIX:-/var/cache/minions-ci/cpython-${VERSION}t}"
PY="$PREFIX/bin/python3.13t"

works() {
    [[ -x "$PY" ]] && "$PY" -c 'import sys, sqlite3, ssl, ctypes; sys.exit(sys._is_gil_enabled())'
}

if works; then
    echo "free-threaded CPython cached: $PY" >&2
    echo "$PY"
    exit 0
fi

BUILD="$(mktemp -d "${TMPDIR:-/tmp}/py313t.XXXXXX")"
trap 'rm -rf "$BUILD"' EXIT
mkdir -p "$BUILD/apt/lists/partial" "$BUILD/apt/cache/archives/partial" "$BUILD/src"

# A private apt configuration: only the trixie source index, in the throwaway directory.
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
    >"$BUILD/apt/sources.list"
cat >"$BUILD/apt/apt.conf" <<CONF
Dir::Etc::sourcelist "$BUILD/apt/sources.list";
Dir::Etc::sourceparts "-";
Dir::State::Lists "$BUILD/apt/lists";
Dir::Cache "$BUILD/apt/cache";
CONF
export APT_CONFIG="$BUILD/apt/apt.conf"
echo "fetching Debian's python3.13 source package (trixie) ..." >&2
apt-get -qq update >&2
(cd "$BUILD/src" && apt-get -qq source --download-only "python3.13/trixie" >&2)
unset APT_CONFIG

echo "$SHA256  $BUILD/src/$ORIG" | sha256sum --check --quiet - >&2 || {
    echo "the source tarball's sha256 is not the pinned one ($SHA256): refusing to build" >&2
    exit 1
}

# The build needs the headers of the modules the runtime and its tests use (sqlite3, ssl, ...).
if ! dpkg -s libsqlite3-dev libssl-dev libffi-dev zlib1g-dev libbz2-dev liblzma-dev >/dev/null 2>&1; then
    apt-get -qq update >&2
    DEBIAN_FRONTEND=noninteractive apt-get -qq install -y build-essential libsqlite3-dev \
        libssl-dev libffi-dev zlib1g-dev libbz2-dev liblzma-dev uuid-dev >&2
fi

tar -xJf "$BUILD/src/$ORIG" -C "$BUILD"
cd "$BUILD/Python-$VERSION"
echo "building CPython $VERSION with --disable-gil into $PREFIX ..." >&2
./configure -q --disable-gil --disable-test-modules --prefix="$PREFIX" >&2
make -s -j"$(nproc)" >"$BUILD/make.log" 2>&1 || { tail -50 "$BUILD/make.log" >&2; exit 1; }
rm -rf "$PREFIX"
make -s install >"$BUILD/install.log" 2>&1 || { tail -50 "$BUILD/install.log" >&2; exit 1; }
works || { echo "the built interpreter does not run with the GIL off: $PY" >&2; exit 1; }
echo "$PY"

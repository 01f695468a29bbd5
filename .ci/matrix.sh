#!/usr/bin/env bash
# The default test suite on every other interpreter we support: CPython 3.12 and 3.13 from the
# machine's pyenv, and free-threaded 3.13t built by .ci/python313t.sh (cached per machine).
# Each gets a fresh virtualenv under $1 with the `test` extra; on 3.13t the suite must run with
# the GIL off after every import, or the run would not test what it claims to.
# Usage: bash .ci/matrix.sh WORKDIR [VERSION ...]   (versions: 3.12 3.13 3.13t; default all)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
WORK="$1"; shift
versions=("$@")
[[ ${#versions[@]} -gt 0 ]] || versions=(3.12 3.13 3.13t)

interpreter() {  # the newest pyenv build of a minor version, e.g. 3.13 -> .../3.13.0/bin/python3.13
    local v="$1" root
    if [[ "$v" == *t ]]; then bash .ci/python313t.sh | tail -n 1; return; fi
    root="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"
    local found
    found="$(ls -d "$root/versions/$v".*/bin/"python$v" 2>/dev/null | sort -V | tail -n 1 || true)"
    [[ -n "$found" ]] || found="$(command -v "python$v" || true)"
    [[ -n "$found" ]] || { echo "no python$v on this machine (pyenv root: $root)" >&2; return 1; }
    echo "$found"
}

for v in "${versions[@]}"; do
    printf '\n==== tests on Python %s\n' "$v"
    py="$(interpreter "$v")"
    "$py" -m venv "$WORK/venv-$v"
    vpy="$WORK/venv-$v/bin/python"
    "$vpy" -m pip install -q --upgrade pip
    "$vpy" -m pip install -q -e ".[test]"
    "$vpy" - <<'PY'
import sys, sysconfig
import loguru, prometheus_client, pykka, sqlite_utils, pytest  # noqa: F401
import minions_actors  # noqa: F401
free = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
gil = sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else True
print(f"{sys.version.split()[0]} free-threaded build: {free}; GIL enabled after imports: {gil}")
if free and gil:
    sys.exit("the GIL came back on import (a C extension without free-threading support)")
PY
    "$vpy" -m pytest
done

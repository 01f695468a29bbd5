#!/usr/bin/env bash
# Validate the deployment files: Prometheus rules (promtool check + unit tests), the systemd
# unit (systemd-analyze verify, and security: exposure at most 4), the supervisord program, and the Grafana dashboard (valid JSON
# whose queries, like the alert rules, only use metric names minions_actors/metrics.py exports).
# Installs promtool (Debian package "prometheus") and systemd-analyze ("systemd") if missing.
# Exits non-zero on the first failure. Usage: deploy/check.sh   (from anywhere)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
python="${PYTHON:-python3}"

say() { printf '==> %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
    else fail "need root (or sudo) to run: $*"
    fi
}

apt_updated=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || fail "apt-get not found: install $* yourself"
    if [ "$apt_updated" -eq 0 ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        apt_updated=1
    fi
    say "installing $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "$@" >/dev/null
}

if ! command -v promtool >/dev/null 2>&1; then
    apt_install prometheus
    # We only wanted promtool: don't leave a Prometheus server running on :9090 where the
    # package's postinst started one (hosts with systemd as PID 1).
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
        as_root systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
fi
command -v systemd-analyze >/dev/null 2>&1 || apt_install systemd
command -v promtool >/dev/null 2>&1 || fail "promtool still missing after installing prometheus"
command -v systemd-analyze >/dev/null 2>&1 || fail "systemd-analyze still missing after installing systemd"

# --- Prometheus rules ----------------------------------------------------------------------
say "promtool check rules"
promtool check rules "$here/prometheus/alerts.yml"
say "promtool test rules"
(cd "$here/prometheus" && promtool test rules alerts_test.yml)

# --- systemd unit --------------------------------------------------------------------------
# `verify` loads the unit into a private manager, so it works in a container without systemd
# as PID 1. --man=no skips Documentation= lookups. It checks that ExecStart's binary exists:
# if this machine has no /usr/bin/python3, verify a copy pointing at the python3 we have.
# Warnings (unknown keys, bad values) only print, so any output counts as a failure.
say "systemd-analyze verify"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
unit="$tmp/minions.service"
cp "$here/systemd/minions.service" "$unit"
if [ ! -x /usr/bin/python3 ]; then
    sed -i "s#/usr/bin/python3#$(command -v python3)#" "$unit"
fi
if ! out="$(systemd-analyze verify --man=no "$unit" 2>&1)"; then
    printf '%s\n' "$out" >&2
    fail "systemd-analyze verify failed"
fi
[ -z "$out" ] || { printf '%s\n' "$out" >&2; fail "systemd-analyze verify printed warnings"; }

# `security --offline` rates the unit file's sandboxing without a running manager (0.0 is
# locked down, 10.0 exposed); docs/deployment.md promises 4.0 or below. --threshold counts
# in tenths (its default, 100, is the 10.0 of the scale printed).
say "systemd-analyze security (exposure at most 4.0)"
if ! out="$(systemd-analyze security --offline=yes --threshold=40 --no-pager "$unit" 2>&1)"; then
    printf '%s\n' "$out" >&2
    fail "the unit's sandboxing is rated above 4 (the listing above shows what is exposed)"
fi
printf '  %s\n' "$(printf '%s\n' "$out" | tail -n 1)"

# --- supervisord program, Grafana dashboard, metric names -----------------------------------
say "supervisord config, Grafana dashboard and metric names"
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" "$python" - "$here" <<'PY'
import configparser
import json
import re
import sys
from pathlib import Path

from prometheus_client import generate_latest  # noqa: F401 - proves the client is importable

from minions_actors.metrics import MetricsHooks
from minions_actors.runtime.dispatch import WorkerPool

here = Path(sys.argv[1])
errors: list[str] = []

# supervisord: an ini file with one [program:minions] that has the keys we rely on.
ini = configparser.ConfigParser(inline_comment_prefixes=(";",), interpolation=None)
ini.read(here / "supervisord" / "minions.conf", encoding="utf-8")
program = "program:minions"
if program not in ini:
    errors.append(f"supervisord: no [{program}] section")
else:
    for key in ("command", "directory", "stopsignal", "stopwaitsecs", "autorestart", "exitcodes",
                "startsecs", "startretries", "stdout_logfile"):
        if not ini[program].get(key):
            errors.append(f"supervisord: [{program}] has no {key}")

# Every sample name the metrics module can expose, derived from a live registry.
class _System:
    store = None
    worker_pool = WorkerPool()  # not started: its families are exported all the same

    def cells(self) -> list[object]:
        return []

suffixes = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "summary": ("", "_count", "_sum", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "info": ("_info",),
}
known: set[str] = set()
for family in MetricsHooks(_System(), port=None).registry.collect():
    known.update(family.name + s for s in suffixes.get(family.type, ("",)))
    known.update(s.name for s in family.samples)
for required in ("minions_workflow_failures_total", "minions_resource_errors_total",
                 "process_resident_memory_bytes", "process_cpu_seconds_total"):
    if required not in known:
        errors.append(f"metrics.py does not export {required}")

name_re = re.compile(r"\b((?:minions|process|python)_[a-zA-Z0-9_]+)")

def check_names(where: str, text: str) -> None:
    for name in name_re.findall(text):
        if name not in known:
            errors.append(f"{where}: unknown metric {name!r}")

# Grafana: valid JSON, panels with queries, every query on known names.
try:
    dash = json.loads((here / "grafana" / "minions-dashboard.json").read_text(encoding="utf-8"))
except ValueError as exc:
    errors.append(f"grafana: invalid JSON: {exc}")
    dash = {}

def walk(panels: list[dict]) -> list[dict]:
    out = []
    for p in panels:
        out.append(p)
        out.extend(walk(p.get("panels", [])))
    return out

exprs = [t["expr"] for p in walk(dash.get("panels", [])) for t in p.get("targets", [])]
for var in dash.get("templating", {}).get("list", []):
    query = var.get("query")
    if isinstance(query, dict):
        query = query.get("query", "")
    if var.get("type") == "query":
        exprs.append(str(query))
if dash and len(exprs) < 5:
    errors.append(f"grafana: only {len(exprs)} queries found")
for expr in exprs:
    check_names("grafana", expr)
    if not name_re.search(expr):
        errors.append(f"grafana: query uses no minions/process metric: {expr}")

# Alert rules (expr:) and their tests (series:) use the same names.
for rel in ("prometheus/alerts.yml", "prometheus/alerts_test.yml"):
    for line in (here / rel).read_text(encoding="utf-8").splitlines():
        if line.strip().startswith(("expr:", "- series:", "series:")):
            check_names(rel, line)

if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
print(f"  {len(exprs)} dashboard queries, {len(known)} known metric names: OK")
PY

say "all deployment checks passed"

"""The systemd recipe of docs/deployment.md: where systemd cannot run as PID 1 (CI, containers),
`systemd-analyze verify` and `security` check the unit (deploy/check.sh), and this checks that
the documented lines create every user and path the unit names and that `Documentation=`
points at a file they install."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from .recipes import ROOT, console_lines, rooted, shipped, useradds

UNIT = shipped("systemd/minions.service")


def test_the_recipe_creates_the_user_the_unit_runs_as() -> None:
    lines = console_lines("systemd")
    for key in ("User", "Group"):
        name = UNIT["Service"][key]
        assert name in useradds(lines), f"the systemd recipe never creates {key}={name}"


def test_every_path_the_unit_names_exists_after_the_documented_lines(tmp_path: Path) -> None:
    service = UNIT["Service"]
    # StateDirectory= is created by systemd itself, before the sandbox is set up
    state = f"/var/lib/{service['StateDirectory']}"
    for key in ("WorkingDirectory", "ReadWritePaths"):
        for path in service[key].split():
            assert path == state or path.startswith(state + "/"), (
                f"{key}={path} is neither StateDirectory= nor created by the recipe")
    # the rest must be created by the documented lines: run them under a temporary root
    (tmp_path / "etc" / "systemd" / "system").mkdir(parents=True)  # systemd's own directory
    for line in console_lines("systemd"):
        words = shlex.split(rooted(line, tmp_path))
        if words[0] in ("install", "cp", "mkdir"):
            subprocess.run(words, cwd=ROOT, check=True, timeout=30)
    installed = tmp_path / "etc" / "systemd" / "system" / "minions.service"
    assert installed.read_text() == (ROOT / "deploy/systemd/minions.service").read_text()
    docs = UNIT["Unit"]["Documentation"].split()
    assert docs, "the unit has no Documentation="
    for url in docs:
        assert url.startswith("file:"), f"Documentation={url}: only file: URLs can be checked"
        target = Path(rooted(url.removeprefix("file:"), tmp_path))
        assert target.is_file(), f"Documentation={url}: the recipe does not install it"
        assert "## systemd" in target.read_text(encoding="utf-8")

"""Run a command under the shipped unit's seccomp sandbox, without systemd as PID 1.

    python tests/ops/sandbox.py deploy/systemd/minions.service -- python -m minions_actors ...

The system-call filter is what systemd builds from the unit: ``@default`` plus the
``SystemCallFilter=`` allow-list, minus its ``~`` lines (groups expanded by
``systemd-analyze syscall-filter``), other calls failing with ``SystemCallErrorNumber=``;
``socket()`` of a family outside ``RestrictAddressFamilies=`` fails with EAFNOSUPPORT; and,
as with ``NoNewPrivileges=yes``, no privileges can be gained. It is loaded with libseccomp
(through ctypes), inherited by every child process, then the command is exec'd.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import socket
import subprocess
import sys
from functools import cache

ALLOW = 0x7FFF0000  # SCMP_ACT_ALLOW
CMP_EQ, CMP_GT = 4, 6  # enum scmp_compare


def errno_action(number: int) -> int:
    return 0x00050000 | (number & 0xFFFF)  # SCMP_ACT_ERRNO(number)


class ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


def unit_values(path: str, key: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [line.split("=", 1)[1].strip() for line in f if line.startswith(f"{key}=")]


@cache
def expand(group: str) -> frozenset[str]:
    """The system calls of a ``@group`` (nested groups expanded), or a call's own name."""
    if not group.startswith("@"):
        return frozenset([group])
    out = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager", group],
                         capture_output=True, text=True, check=True).stdout
    names: set[str] = set()
    for line in out.splitlines()[1:]:
        line = line.strip()
        if line and not line.startswith("#"):
            names |= expand(line)
    return frozenset(names)


def allowed_calls(unit: str) -> set[str]:
    calls = set(expand("@default"))
    for value in unit_values(unit, "SystemCallFilter"):
        if value.startswith("~"):
            calls -= set().union(*(expand(g) for g in value[1:].split()))
        else:
            calls |= set().union(*(expand(g) for g in value.split()))
    return calls


def families(unit: str) -> set[int]:
    return {int(getattr(socket, name)) for value in unit_values(unit, "RestrictAddressFamilies")
            for name in value.split()}


def load_filter(unit: str) -> None:
    lib = ctypes.CDLL(ctypes.util.find_library("seccomp") or "libseccomp.so.2", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                           ctypes.c_uint, ctypes.POINTER(ArgCmp)]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    number = getattr(errno, (unit_values(unit, "SystemCallErrorNumber") or ["EPERM"])[-1])
    filtered = bool(unit_values(unit, "SystemCallFilter"))  # none: every call is allowed
    default = errno_action(number) if filtered else ALLOW
    ctx = lib.seccomp_init(default)

    def rule(action: int, name: str, *conditions: tuple[int, int]) -> None:
        nr = lib.seccomp_syscall_resolve_name(name.encode())
        if nr < 0 or action == default:
            return  # not a call of this architecture, or what happens anyway
        cmps = (ArgCmp * max(1, len(conditions)))(*(ArgCmp(0, op, v, 0) for op, v in conditions))
        rc = lib.seccomp_rule_add_array(ctx, action, nr, len(conditions), cmps)
        assert rc == 0, f"seccomp_rule_add({name}, {conditions}): {os.strerror(-rc)}"

    calls = allowed_calls(unit) if filtered else {"socket"}
    for name in sorted(calls - {"socket"}):
        rule(ALLOW, name)
    ok = families(unit)
    if "socket" in calls and not ok:
        rule(ALLOW, "socket")
    elif "socket" in calls:
        for family in sorted(ok):
            rule(ALLOW, "socket", (CMP_EQ, family))
        for family in range(max(ok)):
            if family not in ok:
                rule(errno_action(errno.EAFNOSUPPORT), "socket", (CMP_EQ, family))
        rule(errno_action(errno.EAFNOSUPPORT), "socket", (CMP_GT, max(ok)))
    rc = lib.seccomp_load(ctx)  # also sets no_new_privs (libseccomp's default)
    assert rc == 0, f"seccomp_load: {os.strerror(-rc)}"


def main(argv: list[str]) -> None:
    unit, sep, *command = argv
    assert sep == "--" and command, __doc__
    load_filter(unit)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])

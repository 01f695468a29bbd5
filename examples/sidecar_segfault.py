"""A supervised sidecar whose native call segfaults: one child process dies, nothing else.

``strlen`` below stands in for a native extension: it reads a C string through ctypes. Given
``b"bad"`` it reads address 0, a real SIGSEGV. Called in this process that would end Python
at once (try ``python -c "import ctypes; ctypes.string_at(0)"``). Run in a Sidecar it only
ends the sidecar's child process: the ask raises SidecarCrashed, the supervisor restarts the
sidecar with a fresh process, the next call is served, and a bystander minion carries on.
The child's faulthandler report ("Fatal Python error: Segmentation fault" and the Python stack)
goes to stderr.

With the default "spawn" start method the child imports this script again (as __mp_main__),
which is why the target can be "__main__:strlen" and why the script needs the
``if __name__ == "__main__":`` guard.

Run: python examples/sidecar_segfault.py
"""

import ctypes
import multiprocessing
import os

from minions_actors import ActorSystem, Hooks, Minion
from minions_actors.sidecar import Sidecar, SidecarCrashed, describe_exit


def strlen(data):
    """The risky "native" call: runs in the sidecar's child process only."""
    if data == b"bad":
        return len(ctypes.string_at(0))  # dereferences NULL: SIGSEGV
    return len(ctypes.string_at(data))


class Bystander(Minion):
    """An unrelated minion: it must not notice the crash."""

    def __init__(self, starts):
        super().__init__()
        self.count = 0
        starts.append(self.name)

    def on_receive(self, message):
        if message == "count":
            return self.count
        self.count += 1


class Restarts(Hooks):
    def __init__(self):
        self.paths = []

    def minion_restarting(self, cell, delay, cause):
        self.paths.append(cell.path)


def main():
    restarts = Restarts()
    system = ActorSystem.start(
        state_store=None, metrics_port=None, file_logs=False, stderr_logs=False,
        handle_signals=False, hooks=[restarts],
    )
    starts = []
    bystander = system.spawn(Bystander, starts, name="bystander")
    native = system.spawn(Sidecar, "__main__:strlen", name="native", call_timeout=10.0)

    bystander.tell("tick")
    first_pid = native.proxy().pid.get(timeout=10)
    n = native.ask(b"hello", timeout=10)
    print(f"call 1: strlen(b'hello') = {n}, computed in another process:",
          first_pid != os.getpid())

    print("call 2: strlen(b'bad') reads address 0 ...")
    try:
        native.ask(b"bad", timeout=10)
    except SidecarCrashed as exc:
        print(f"crash detected: {type(exc).__name__}, {describe_exit(exc.exitcode)}")
    bystander.tell("tick")

    n = native.ask(b"minions!", timeout=10)  # queued, then served after the restart
    print(f"supervisor restarted 'native' {restarts.paths.count('native')} time(s)")
    new_pid = native.proxy().pid.get(timeout=10)
    print(f"call 3: strlen(b'minions!') = {n}, in a fresh process:", new_pid != first_pid)
    bystander.tell("tick")
    print(f"bystander undisturbed: count={bystander.ask('count', timeout=5)}, "
          f"started once: {starts == ['bystander']}")

    ok = system.shutdown()
    print(f"clean shutdown: {ok}, child processes left: {len(multiprocessing.active_children())}")


if __name__ == "__main__":
    main()

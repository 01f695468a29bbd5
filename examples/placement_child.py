"""A stateful minion placed in a child process: a segfault there is an ordinary crash.

``Parser`` is an ordinary persistent minion; only ``placement=ChildProcess()`` at spawn
time moves its code into a child process. Its ref, its supervisor and its state store stay
in this process. The "native" call segfaults on ``b"bad"``: only the child dies, the ask
raises ChildProcessCrashed, Gru restarts the minion in a fresh process, restored from its
snapshot after its last successful message, and the next message is served. The child's
faulthandler report goes to stderr.

With the default "spawn" start method the child imports this script again, which is why the
class is defined at module level and the script needs the ``if __name__ == "__main__":``
guard.

Run: python examples/placement_child.py
"""

import ctypes
import os

from minions_actors import ActorSystem, ChildProcess, ChildProcessCrashed, Minion


class Parser(Minion):
    def __init__(self):
        super().__init__()
        self.parsed = 0

    def on_receive(self, data):
        if data == b"bad":
            ctypes.string_at(0)  # dereferences NULL: SIGSEGV, as a buggy extension would
        self.parsed += 1
        return os.getpid()

    def snapshot(self):
        return {"parsed": self.parsed}

    def restore(self, state):
        self.parsed = state["parsed"]


if __name__ == "__main__":
    system = ActorSystem.start(state_store=None, metrics_port=None, file_logs=False,
                               stderr_logs=False)
    parser = system.spawn(Parser, name="parser", placement=ChildProcess(call_timeout=30))
    pid = parser.ask(b"ok", timeout=30)
    parser.ask(b"ok", timeout=30)
    print("served in another process:", pid != os.getpid())
    try:
        parser.ask(b"bad", timeout=30)
    except ChildProcessCrashed as exc:
        print("ask raised ChildProcessCrashed, killed by SIGSEGV:", "SIGSEGV" in str(exc))
    print("restarted in a fresh process:", parser.ask(b"ok", timeout=30) != pid)
    print("state after restart:", parser.proxy().parsed.get(timeout=5))
    print("clean shutdown:", system.shutdown())

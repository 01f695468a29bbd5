"""A small supervision tree: a pool supervisor with three workers, one of which crashes.

The pool supervises its workers one-for-one: the crashed worker is restarted with fresh
state (it has no snapshot), the messages queued behind the crash are kept, its ref stays
valid, and its siblings are not disturbed.

Run: python examples/supervision_tree.py
"""

from minions_actors import ActorSystem, Hooks, Minion, OneForOne


class Worker(Minion):
    def __init__(self, starts):
        super().__init__()
        self.starts = starts  # shared list: how many times each worker started
        self.done = 0

    def on_start(self):
        self.starts.append(self.name)

    def on_receive(self, message):
        if message == "bad job":
            raise ValueError(f"{self.name} cannot do {message!r}")
        if message == "done":
            return self.done
        self.done += 1  # any other message is a job


class Pool(Minion):
    strategy = OneForOne(max_restarts=3, within=5.0)  # how the pool treats its workers

    def __init__(self, size, starts):
        super().__init__()
        self.size = size
        self.starts = starts

    def on_start(self):
        for i in range(1, self.size + 1):
            self.spawn(Worker, self.starts, name=f"w{i}")

    def on_receive(self, message):
        if message == "workers":  # answered after on_start: all workers are spawned
            return list(self.children.values())


class Events(Hooks):
    """Lifecycle hooks: collects what the supervisor did, to print it afterwards."""

    def __init__(self):
        self.lines = []

    def minion_crashed(self, cell, exc, phase):
        self.lines.append(f"{cell.path} crashed in {phase}: {exc}")

    def minion_restarting(self, cell, delay, cause):
        self.lines.append(f"{cell.path} restarting ({cause})")


events = Events()
system = ActorSystem.start(
    state_store=None, metrics_port=None, file_logs=False, stderr_logs=False,
    handle_signals=False, hooks=[events],
)
starts = []
pool = system.spawn(Pool, 3, starts, name="pool")
w1, w2, w3 = pool.ask("workers", timeout=2)
for worker, jobs in ((w1, 2), (w2, 3), (w3, 4)):
    for _ in range(jobs):
        worker.tell("job")
print("before:", {w.path: w.ask("done", timeout=2) for w in (w1, w2, w3)})

w2.tell("bad job")  # crashes w2 ...
w2.tell("job")  # ... this one waits in the mailbox and is handled after the restart
print("after the crash, w2 did", w2.ask("done", timeout=2), "job (fresh state + queued job)")
for line in events.lines:
    print("event:", line)
print("same ref after restart:", system.get("pool/w2") == w2, w2.is_alive())
print("after:", {w.path: w.ask("done", timeout=2) for w in (w1, w2, w3)})
print("starts:", {name: starts.count(name) for name in ("w1", "w2", "w3")})

try:  # a crash through ask() also reaches the asker
    w3.ask("bad job", timeout=2)
except ValueError as exc:
    print("ask raised:", exc)
print("w3 after its restart did", w3.ask("done", timeout=2), "jobs; w1 still did",
      w1.ask("done", timeout=2))

system.shutdown()
print("exit code:", system.exit_code)

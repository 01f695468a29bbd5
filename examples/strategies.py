"""One-for-all versus rest-for-one: the same three children, the middle one crashes.

Each supervisor starts children a, b and c in that order; then b crashes. The printout
shows, in order, what each strategy did: which children were stopped (on_stop), which one
crashed (on_failure) and which were started again (on_start). One-for-one is shown too, as
the baseline.

Run: python examples/strategies.py
"""

from minions_actors import ActorSystem, Minion, OneForAll, OneForOne, RestForOne


class Child(Minion):
    def __init__(self, log):
        super().__init__()
        self.log = log  # a list shared by the children; each entry is one lifecycle event

    def on_start(self):
        self.log.append(f"start {self.name}")

    def on_stop(self):
        self.log.append(f"stop {self.name}")

    def on_failure(self, exc_type, exc, tb):
        self.log.append(f"crash {self.name}")

    def on_receive(self, message):
        if message == "crash":
            raise RuntimeError(f"{self.name} crashed on purpose")
        return "pong"


class Parent(Minion):
    def __init__(self, log):
        super().__init__()
        self.log = log

    def on_start(self):
        for name in ("a", "b", "c"):
            self.spawn(Child, self.log, name=name)

    def on_receive(self, message):
        return self.children  # {name: ref}, in start order, once on_start has run


def crash_the_middle_child(strategy):
    log = []
    sup_class = type(f"{type(strategy).__name__}Parent", (Parent,), {"strategy": strategy})
    sup = system.spawn(sup_class, log, name=type(strategy).__name__)
    kids = sup.ask("children", timeout=2)
    for kid in kids.values():
        kid.ask("ping", timeout=2)  # answered after its on_start: all three are up
    del log[:]  # forget the first starts
    kids["b"].tell("crash")
    # The supervisor stops the affected siblings before it restarts b, and restarts them
    # in start order after b; queued messages wait for the new instances. So once b and
    # then c answered, every restart has happened.
    kids["b"].ask("ping", timeout=5)
    kids["c"].ask("ping", timeout=5)
    restarted = [event.split()[1] for event in log if event.startswith("start")]
    print(f"{type(strategy).__name__:>10}: {', '.join(log)}")
    print(f"{'':>10}  restarted: {', '.join(restarted)}")
    sup.stop()


system = ActorSystem.start(
    state_store=None, metrics_port=None, file_logs=False, stderr_logs=False,
    handle_signals=False,
)
for strategy in (OneForOne(), OneForAll(), RestForOne()):
    crash_the_middle_child(strategy)
system.shutdown()
print("exit code:", system.exit_code)

"""Quickstart: one minion, three ways to talk to it.

Run: python examples/quickstart.py
"""

from minions_actors import ActorSystem, Minion


class Counter(Minion):
    def __init__(self, start=0):
        super().__init__()
        self.count = start

    def on_receive(self, message):  # plain messages, sent with tell() or ask()
        if message == "get":
            return self.count  # the return value is the reply to ask()
        self.count += message

    def add(self, n):  # a method, called through ref.proxy()
        self.count += n
        return self.count


system = ActorSystem.start(
    state_store=None, metrics_port=None, file_logs=False, stderr_logs=False,
    handle_signals=False,
)
counter = system.spawn(Counter, 10, name="counter")
counter.tell(5)  # fire and forget
print("ask('get') ->", counter.ask("get", timeout=1.0))
print("proxy().add(1) ->", counter.proxy().add(1).get(timeout=1.0))
print("system.get('counter') is the same minion:", system.get("counter") == counter)
system.shutdown()
print("clean shutdown:", system.exit_code == 0)

"""Resources and pipelines: a file tail feeds a minion tree that calls a local HTTP service.

- ``Dictionary`` is a resource: an HTTP client of a real server on 127.0.0.1 (started here,
  standing in for a remote API). It opens before the first worker starts and closes after
  the last one stops; every call is counted and timed per method.
- ``FileTail`` is a pipeline: it reads the lines appended to a file and hands each one to
  the ``router`` minion, whose two ``worker`` children look the words up. Its position (the
  file's identity and a byte offset) is persisted like a snapshot, so a restarted process
  resumes where it was, even if the file was rotated meanwhile.

Run: python examples/resources_pipeline.py
"""

import http.client
import json
import tempfile
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from minions_actors import ActorSystem, FileTail, Minion, Resource, uses

MEANINGS = {"gru": "the boss", "minion": "a helper", "banana": "a fruit"}


class DictionaryServer(BaseHTTPRequestHandler):
    """The remote end: GET /health and GET /define/<word>."""

    def do_GET(self):  # http.server calls it by this name
        word = self.path.rsplit("/", 1)[-1]
        body = {"ok": True} if self.path == "/health" else {"word": word,
                                                             "meaning": MEANINGS.get(word)}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # quiet
        pass


class Dictionary(Resource):
    name = "dictionary"
    health_interval = 5.0  # checked every 5 s; a failure reopens it with backoff

    def __init__(self, port):
        self.port = port
        self._local = threading.local()  # one connection per calling thread

    def open(self):
        self._get("/health")  # fail early: the workers do not start if the server is down

    def close(self):
        print("dictionary: closed")

    def health_check(self):
        return self._get("/health")["ok"]

    def define(self, word):  # a public method: measured as method="define"
        return self._get(f"/define/{word}")["meaning"]

    def _get(self, path):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                                 timeout=5)
        conn.request("GET", path)
        return json.loads(conn.getresponse().read())


class Worker(Minion):
    dictionary = uses(Dictionary)  # filled in by the runtime: a measured handle

    def __init__(self, results):
        super().__init__()
        self.results = results

    def on_receive(self, word):
        self.results[word] = self.dictionary.define(word)


class Router(Minion):
    """Subscribed to the pipeline; spreads words over its workers."""

    def __init__(self, results):
        super().__init__()
        self.workers = [self.spawn(Worker, results, name=f"worker-{i}") for i in range(2)]

    def on_receive(self, line):
        for word in line.split():
            self.workers[len(word) % 2].tell(word)


server = ThreadingHTTPServer(("127.0.0.1", 0), DictionaryServer)
threading.Thread(target=server.serve_forever, name="dictionary-server", daemon=True).start()

tmp = tempfile.TemporaryDirectory()
workdir = Path(tmp.name)
source = workdir / "words.txt"
results = {}
system = ActorSystem.start(state_store=workdir / "minions.db", metrics_port=0,
                           file_logs=False, stderr_logs=False, handle_signals=False,
                           resources=[Dictionary(server.server_address[1])])
system.spawn(Router, results, name="router", mailbox_size=100)  # bounded: back-pressure
system.spawn(FileTail, source, ["router"], name="tail")

with source.open("a") as f:  # another program appends lines; the pipeline tails them
    f.write("gru minion\nbanana\n")
tail = system.get("tail").proxy()


def tail_offset():
    position = tail.position.get(timeout=2)  # {"dev", "inode", "offset", "head"} or None
    return position["offset"] if position else 0


while len(results) < 3 or tail_offset() != source.stat().st_size:
    threading.Event().wait(0.02)  # a demo: a real program would just keep running
for word in sorted(results):
    print(f"{word}: {results[word]}")
print("dictionary while its users run:", system.resources.state("dictionary"))
print("tail position (bytes):", tail_offset())

with urllib.request.urlopen(system.metrics.url, timeout=5) as page:
    for line in page.read().decode().splitlines():
        if line.startswith(("minions_resource_calls_total", "minions_pipeline_events_total")):
            print(line)
system.shutdown()
server.shutdown()
print("dictionary after shutdown:", system.resources.state("dictionary"))
print("exit code:", system.exit_code)
tmp.cleanup()

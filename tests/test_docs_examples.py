"""Every code example in the docs runs as written.

Convention: a fenced ```python block whose first line is ``# example`` is runnable. It is run
in a fresh interpreter, in an empty working directory, and must exit with status 0 within the
timeout. When the next fenced block after it (with nothing but blank lines in between) is a
```text block, that block is the expected standard output, compared line by line (trailing
spaces ignored).

Every ```python block of every page is runnable, except one whose first line is
``# fragment: <reason>``, for code that cannot run on its own (an excerpt of the package's
source, say). Keep those rare: at most one per page.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = tuple(sorted(p.name for p in DOCS.glob("*.md")))
MARKER = "# example"
FRAGMENT = re.compile(r"# fragment: \S")
MAX_FRAGMENTS_PER_PAGE = 1
TIMEOUT = 60

_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Example:
    page: str
    line: int
    code: str
    expected: str | None

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def _fences(page: str) -> tuple[str, list[re.Match[str]]]:
    text = (DOCS / page).read_text(encoding="utf-8")
    return text, list(_FENCE.finditer(text))


def _line(text: str, fence: re.Match[str]) -> int:
    return text.count("\n", 0, fence.start()) + 1


_PYTHON_ALIASES = {"py", "python3", "py3", "pycon", "ipython", "ipython3"}


def python_blocks(page: str) -> list[tuple[int, str]]:
    """Every ```python block of one page: (line of its opening fence, first line of code)."""
    text, fences = _fences(page)
    aliased = [_line(text, f) for f in fences if f.group(1).strip() in _PYTHON_ALIASES]
    assert not aliased, f"docs/{page}, lines {aliased}: spell the fence ```python"
    return [
        (_line(text, f), (f.group(2).splitlines() or [""])[0])
        for f in fences
        if f.group(1).strip() == "python"
    ]


def extract(page: str) -> list[Example]:
    """The runnable examples of one page, with their expected output when given."""
    text, fences = _fences(page)
    examples = []
    for i, fence in enumerate(fences):
        info, body = fence.group(1).strip(), fence.group(2)
        if info != "python" or not body.startswith(MARKER):
            continue
        expected = None
        if i + 1 < len(fences):
            nxt = fences[i + 1]
            between = text[fence.end() : nxt.start()]
            if not between.strip() and nxt.group(1).strip() == "text":
                expected = nxt.group(2)
        examples.append(Example(page, _line(text, fence), body, expected))
    return examples


ALL = [example for page in PAGES for example in extract(page)]


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines()]


def test_pages_are_found() -> None:
    assert {"index.md", "getting-started.md", "concepts.md", "supervision.md"} <= set(PAGES)


def test_guide_pages_have_runnable_examples() -> None:
    for page in ("getting-started.md", "concepts.md", "supervision.md"):
        assert len(extract(page)) >= 2, f"{page} should have runnable examples"


@pytest.mark.parametrize("page", PAGES)
def test_every_python_block_is_runnable(page: str) -> None:
    """A ```python block is an ``# example`` (run by the test below) or a rare, explained
    ``# fragment: <reason>``; nothing else."""
    fragments = []
    for line, first in python_blocks(page):
        if FRAGMENT.match(first):
            fragments.append(line)
            continue
        assert first == MARKER, (
            f"docs/{page}:{line}: a ```python block must start with '{MARKER}' (runnable, "
            f"tested) or '# fragment: <why it cannot run standalone>'; it starts with {first!r}"
        )
    assert len(fragments) <= MAX_FRAGMENTS_PER_PAGE, (
        f"docs/{page}: too many '# fragment:' blocks (lines {fragments}); rewrite them as "
        f"small runnable examples"
    )


def _start_calls(code: str) -> list[ast.Call]:
    return [
        node for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and node.func.attr == "start" and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "ActorSystem"
    ]


@pytest.mark.parametrize("example", ALL, ids=[e.id for e in ALL])
def test_doc_example_never_binds_a_fixed_metrics_port(example: Example) -> None:
    """The examples run in parallel: the default port 8081 (or any fixed one) would clash."""
    for call in _start_calls(example.code):
        port = next((k.value for k in call.keywords if k.arg == "metrics_port"), None)
        assert port is not None and not (isinstance(port, ast.Constant) and port.value), (
            f"docs/{example.id}, line {call.lineno} of the example: pass metrics_port=None "
            f"(or 0) to ActorSystem.start()"
        )


@pytest.mark.parametrize("example", ALL, ids=[e.id for e in ALL])
def test_doc_example_runs(example: Example, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(example.code, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script)], timeout=TIMEOUT, capture_output=True, text=True,
        cwd=tmp_path,
    )
    where = f"example at docs/{example.id}"
    assert proc.returncode == 0, f"{where} failed:\n{proc.stdout}\n{proc.stderr}"
    if example.expected is not None:
        assert _lines(proc.stdout) == _lines(example.expected), (
            f"{where}: output differs from the ```text block after it\n"
            f"got:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )

"""The ``# example`` test marker stays in the Markdown sources (the docs tests find the
examples by it) and is left out of the rendered pages by docs/conf.py's source-read hook."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from .test_docs_examples import DOCS, MARKER, PAGES, extract


def load_conf() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_conf", DOCS / "conf.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rendered_sources_lose_the_marker_and_nothing_else() -> None:
    strip = load_conf().strip_example_markers
    total = 0
    for page in PAGES:
        text = (DOCS / page).read_text(encoding="utf-8")
        examples = extract(page)
        total += len(examples)
        rendered = strip(text)
        assert f"```python\n{MARKER}\n" not in rendered, page
        # exactly one line less per example, and every example's code is still there
        assert len(rendered.splitlines()) == len(text.splitlines()) - len(examples), page
        for example in examples:
            assert example.code.split("\n", 1)[1] in rendered
    assert total > 30  # the tests still find the examples in the sources

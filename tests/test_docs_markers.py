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


def test_the_api_page_describes_every_option_from_its_configuration_row() -> None:
    # start()'s 25 options were listed typed but undescribed: docs/conf.py gives each the
    # text of its row in docs/configuration.md (the one description), converted to reST.
    import dataclasses
    import inspect
    import re

    from minions_actors import ActorSystem
    from minions_actors.hosting.options import StartOptions

    conf = load_conf()
    wanted = {
        "minions_actors.ActorSystem.start": [f.name for f in dataclasses.fields(StartOptions)],
        "minions_actors.ActorSystem.spawn": [
            p.name for p in inspect.signature(ActorSystem.spawn).parameters.values()
            if p.kind is p.KEYWORD_ONLY],
    }
    assert set(conf.OPTION_TABLES) == set(wanted)
    for method, names in wanted.items():
        rows = conf.option_rows(conf.OPTION_TABLES[method])
        assert sorted(rows) == sorted(names), method
        for default, meaning in rows.values():
            text = default + " " + meaning
            assert "{doc}" not in text and "](" not in text, text  # MyST left in reST
            # `x` is not ``x``: what is left once literals and roles are taken out
            bare = re.sub(r"``[^`]+``|:[\w:]+:`[^`]+`|`[^`]+`_", "", text)
            assert "`" not in bare, text
    rows = conf.option_rows(conf.OPTION_TABLES["minions_actors.ActorSystem.start"])
    assert rows["state_store"][1].endswith("See :doc:`persistence-store`.")
    assert "`execution modes <concepts.html#" in rows["execution"][1]

"""Sphinx configuration for the minions_actors documentation.

Build with ``make -C docs html``; warnings are errors by default (see ``SPHINXOPTS`` in the
Makefile). No network access is needed: intersphinx is loaded but has no mappings.
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # document the checkout, even without `pip install -e .`

import minions_actors  # noqa: E402

project = "minions_actors"
author = "minions_actors contributors"
copyright = "minions_actors contributors"
release = minions_actors.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# MyST: ```{eval-rst}``` blocks for autodoc, heading anchors for [links](page.md#section).
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# autodoc
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autoclass_content = "class"

# napoleon: Google-style sections (Args:, Returns:...) in docstrings. NumPy style is off: the
# code does not use it, and napoleon would otherwise parse every docstring twice.
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# No network: intersphinx is enabled, but there is nothing to fetch.
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}

nitpicky = False

html_theme = "furo"
html_title = f"minions_actors {release}"


# Constructor parameters that are runtime internals: users never build these objects.
_INTERNAL_PARAMETERS = {
    "minions_actors.MinionRef": {"cell"},
    "minions_actors.MinionFuture": {"minion"},
}


def _hide_private_parameters(app, what, name, obj, options, signature, return_annotation):
    """Leave private constructor parameters (``_token``, ``*_args``) out of the descriptions,
    and ``self`` (annotated where a function is shared as a method: ``spawn``).

    With ``autodoc_typehints = "description"`` every annotated parameter gets a line; the
    private ones are not API (``ActorSystem`` is built by ``start()``, a ``Minion`` by its
    supervisor, a ``MinionRef`` by ``spawn``). Runs after autodoc's own recording of the
    annotations, which happens just before this event is emitted.
    """
    annotations = app.env.current_document.autodoc_annotations.get(name, {})
    hidden = _INTERNAL_PARAMETERS.get(name, set())
    for key in [k for k in annotations if k.startswith("_") or k == "self" or k in hidden]:
        del annotations[key]


def _no_inline_attribute_types(app, what, name, obj, options, lines):
    """Keep napoleon from reading ``text: more text`` in an attribute docstring as a type.

    Napoleon takes the first line of an attribute's docstring as ``type: description`` when it
    contains a colon, which turns prose such as "How this minion supervises its children
    (default: one-for-one...)" into a bogus type. Our docstrings never use that form (types
    come from annotations), so we put an empty reST comment first: napoleon reads that as
    the "type-less" first line and the prose renders unchanged. Runs before napoleon (500).
    """
    if what in ("attribute", "data", "property") and lines and ":" in lines[0]:
        lines[:0] = ["..", ""]


#: The first line of a runnable example (tests/test_docs_examples.py): for the tests only.
_EXAMPLE_MARKER = re.compile(r"^(```python[ \t]*\n)# example[ \t]*\n", re.MULTILINE)


def strip_example_markers(text):
    """``text`` without the ``# example`` line that opens runnable ```python blocks."""
    return _EXAMPLE_MARKER.sub(r"\1", text)


def _strip_example_markers(app, docname, source):
    """Keep the test marker out of the rendered pages (the files on disk keep it)."""
    source[0] = strip_example_markers(source[0])


#: Methods whose keyword options are described once, by a table of docs/configuration.md:
#: the heading of that table's section. Each option gets its row's text as its description.
OPTION_TABLES = {
    "minions_actors.ActorSystem.start": "## `ActorSystem.start(...)`",
    "minions_actors.ActorSystem.spawn": "## `spawn(...)` (on the system or inside a minion)",
}
_MYST_INLINE = re.compile(
    r"\{(?P<role>[\w:]+)\}`(?P<target>[^`]+)`"  # {doc}`page`, {py:class}`~x.Y`
    r"|\[(?P<text>[^\]]+)\]\((?P<url>[^)\s]+)\)"  # [text](page.md#anchor)
    r"|`(?P<code>[^`]+)`"  # `code`
)


def _myst_to_rest(match):
    if match["role"]:
        return f":{match['role']}:`{match['target']}`"
    if match["text"]:
        page, _, anchor = match["url"].partition("#")
        if not anchor and page.endswith(".md"):
            return f":doc:`{match['text']} <{page[:-3]}>`"
        url = page.replace(".md", ".html") + (f"#{anchor}" if anchor else "")
        return f"`{match['text']} <{url}>`__"
    return f"``{match['code']}``"


def option_rows(heading):
    """``{option: (default, meaning)}`` of the table under ``heading`` in configuration.md,
    in reST (the table's inline Markdown converted)."""
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    section = text.split(heading + "\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        name, default, meaning = (c.strip() for c in line.strip(" |").split(" | ", 2))
        for option in re.findall(r"`(\w+)`", name):
            rows[option] = tuple(_MYST_INLINE.sub(_myst_to_rest, c) for c in (default, meaning))
    return rows


def _describe_options(app, what, name, obj, options, lines):
    """Append a ``:param:`` line per keyword option, from its configuration row, so the API
    page says what each does (autodoc adds the types); an option without a row is an error."""
    heading = OPTION_TABLES.get(name)
    if heading is None:
        return
    rows = option_rows(heading)
    params = inspect.signature(obj).parameters.values()
    lines.append("")
    for param in params:
        if param.kind is not param.KEYWORD_ONLY:
            continue
        if param.name not in rows:
            raise ValueError(f"{name}: option {param.name!r} has no row under {heading!r} "
                             "in docs/configuration.md")
        default, meaning = rows[param.name]
        lines.append(f":param {param.name}: {meaning} Default: {default}.")


def setup(app):
    app.connect("source-read", _strip_example_markers)
    app.connect("autodoc-process-signature", _hide_private_parameters, priority=600)
    app.connect("autodoc-process-docstring", _no_inline_attribute_types, priority=400)
    app.connect("autodoc-process-docstring", _describe_options)

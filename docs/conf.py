"""Sphinx configuration for the minions_actors documentation.

Build with ``make -C docs html``; warnings are errors by default (see ``SPHINXOPTS`` in the
Makefile). No network access is needed: intersphinx is loaded but has no mappings.
"""

from __future__ import annotations

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


def setup(app):
    app.connect("source-read", _strip_example_markers)
    app.connect("autodoc-process-signature", _hide_private_parameters, priority=600)
    app.connect("autodoc-process-docstring", _no_inline_attribute_types, priority=400)

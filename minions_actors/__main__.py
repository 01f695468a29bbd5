"""``python -m minions_actors``: see :mod:`minions_actors._cli`."""

from ._cli import main

raise SystemExit(main())

"""``python -m minions_actors``: see :mod:`minions_actors.ops.cli`."""

from minions_actors.ops.cli import main

raise SystemExit(main())

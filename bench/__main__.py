"""``python -m bench``: run the benchmark suite (see ``bench/run.py``);
``python -m bench interpreters [...]``: free-threaded 3.13t beside GIL 3.13 (see
``bench/interpreters.py``)."""

from __future__ import annotations

import sys

if __name__ == "__main__":
    if sys.argv[1:2] == ["interpreters"]:
        from bench.interpreters import main as interpreters

        sys.exit(interpreters(sys.argv[2:]))
    from bench.run import main

    sys.exit(main())

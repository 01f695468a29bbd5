"""Operations: the command line (:mod:`.cli`, ``python -m minions_actors``), read-only store
inspection (:mod:`.inspect`) and the demo application (:mod:`.demo`)."""

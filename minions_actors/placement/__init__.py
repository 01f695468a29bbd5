"""Where a minion's code runs: in the process (the default), in a child process, on a Ray
cluster. The ref, the supervisor, the state store and the metrics stay home; only handler
calls travel."""

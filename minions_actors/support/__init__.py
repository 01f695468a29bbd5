"""Small utilities with no dependency on the rest of the package: the timer thread and the
signal mask for runtime threads."""

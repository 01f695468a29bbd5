"""Tests of hooks, logs, metrics."""

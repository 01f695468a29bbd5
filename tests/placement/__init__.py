"""Tests of placement: child processes, Ray, keyed groups, sidecars."""

"""Tests of the command line, store inspection, supervisord."""

"""Tests of user resources and pipelines."""

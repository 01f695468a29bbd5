"""Tests of durable workflows."""

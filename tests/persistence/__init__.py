"""Tests of state stores: SQLite files, their faults and crashes, quarantine, durability."""

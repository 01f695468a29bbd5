"""Tests of the runtime: cells, mailboxes, the pool, supervision, pykka compatibility, snapshots."""

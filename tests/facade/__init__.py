"""Tests of the public facade: ActorSystem options, layers, typing, errors, shutdown."""

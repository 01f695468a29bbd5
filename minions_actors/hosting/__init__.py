"""What :class:`~minions_actors.ActorSystem` is built from: its start options, the registry of
its cells, the shutdown sequence and the signal handling.

The system (``system.py``) wires these parts together and implements the runtime's
``runtime.host.Host``; nothing below the system imports them.
"""

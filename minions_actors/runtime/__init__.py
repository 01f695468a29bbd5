"""The actor runtime: mailboxes, runtime messages, the cell loop (incarnations, supervision,
death watch), minions, refs and proxies, snapshots taken after each message.

It knows nothing of :class:`~minions_actors.ActorSystem`: a cell talks to its host through
the narrow interface in :mod:`.host`.
"""

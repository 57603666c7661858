"""Model, data and gradient code shared by the server and the clients.

Submodules import torch only where they need it, so ``task.seeding``, ``task.sampling``,
``task.partition`` and ``task.quantize`` stay light for the Flower client's profile queries.
"""

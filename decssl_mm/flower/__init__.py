"""Pretrain across sites over Flower (the optional ``flower`` extra).

Each site runs :mod:`~decssl_mm.flower.client_app` next to its images; one
server runs :mod:`~decssl_mm.flower.server_app`. Both build their parts
from the same mmengine config as the in-process loop; the round travels as
:class:`~decssl_mm.federated.messages.ClientTask` and
:class:`~decssl_mm.federated.messages.ClientResult` (see docs/deploy.md).

The modules that import ``flwr`` (``codec``, ``client_app``,
``grid_transport``, ``server_app``) are never imported by the core, which
works without the extra.
"""

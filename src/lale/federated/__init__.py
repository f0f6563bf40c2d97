"""Federated training across sites on Flower: ``lale federate``.

Each site keeps its data and trains with lale's own loop; only model arrays travel. The
server uses Flower's strategies (FedAvg, FedProx, FedAdam) and Grid; lale adds the sites' checks,
a checkpoint after every round, per-site bytes and scores, and an ordinary run directory.

- :mod:`lale.federated.sites`: sites given, or cut from one dataset by region, tile or at random.
- :mod:`lale.federated.options`: what a federation and a site are given.
- :mod:`lale.federated.local`: a site's local training and scoring.
- :mod:`lale.federated.client`: the ClientApp.
- :mod:`lale.federated.server`, :mod:`lale.federated.rounds`: the ServerApp's loop.
- :mod:`lale.federated.state`, :mod:`lale.federated.record`: checkpoints, ``federation.json``.
- :mod:`lale.federated.simulate`: the whole federation on one machine (Flower's simulation).
- :mod:`lale.federated.app`, :mod:`lale.federated.deploy`: a real deployment (SuperLink,
  SuperNodes, ``flwr run``).
- :mod:`lale.federated.run`: what ``lale federate`` runs.
"""

"""FedAvg: the weighted mean of the clients' models."""
from decssl_mm.registry import AGGREGATORS
from .base_aggregator import BaseAggregator


@AGGREGATORS.register_module()
class FedAvg(BaseAggregator):
    """Federated averaging (McMahan et al., 2017).

    The new global model is the mean of the participants' models weighted by
    their sample counts (``weighting='samples'``) or uniformly. With
    ``exclude=[r'\\.bn\\d*\\.', r'downsample\\.1\\.']`` (BatchNorm layers of a
    ResNet) it is FedBN. See :class:`BaseAggregator` for the arguments.
    """

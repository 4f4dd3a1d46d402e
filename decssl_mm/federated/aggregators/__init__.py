from .base_aggregator import (DEFAULT_LOCAL_PATTERNS, BaseAggregator,
                              ClientUpdateRejected)
from .fedadam import FedAdam
from .fedavg import FedAvg
from .fedavgm import FedAvgM

__all__ = [
    'BaseAggregator', 'ClientUpdateRejected', 'DEFAULT_LOCAL_PATTERNS',
    'FedAvg', 'FedAvgM', 'FedAdam'
]

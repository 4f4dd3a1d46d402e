from .base_aggregator import DEFAULT_LOCAL_PATTERNS, BaseAggregator
from .buffered_aggregator import BufferedAggregator
from .coordinate_median import CoordinateMedian
from .fedadam import FedAdam
from .fedavg import FedAvg
from .fedavgm import FedAvgM
from .norm_clipped_fedavg import NormClippedFedAvg
from .trimmed_mean import TrimmedMean
from .update_checks import ClientUpdateRejected

__all__ = [
    'BaseAggregator', 'ClientUpdateRejected', 'DEFAULT_LOCAL_PATTERNS',
    'FedAvg', 'FedAvgM', 'FedAdam', 'BufferedAggregator', 'CoordinateMedian',
    'TrimmedMean', 'NormClippedFedAvg'
]

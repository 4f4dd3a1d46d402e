from .aggregators import (BaseAggregator, ClientUpdateRejected, FedAdam,
                          FedAvg, FedAvgM)
from .client_isolation import client_local_ops
from .client_sampler import UniformClientSampler
from .client_state import DiskClientStateStore
from .federated_hook import FederatedStateHook
from .loop import FederatedTrainLoop
from .model_wrapper import FederatedModelWrapper
from .rank_assignment import assign_clients_to_ranks
from .round_batch_sampler import ClientRoundBatchSampler
from .messages import ClientResult, ClientTask
from .servers import ClusteredServer, FedAvgServer, ScaffoldServer
from .trainers import (ClientTrainer, FedEMATrainer, FedProxTrainer,
                       ScaffoldTrainer)
from .seeded_sampler import ClientSeededBatchSampler

__all__ = [
    'BaseAggregator', 'ClientUpdateRejected', 'FedAvg', 'FedAvgM', 'FedAdam',
    'client_local_ops', 'UniformClientSampler', 'DiskClientStateStore',
    'FederatedStateHook', 'FederatedTrainLoop', 'FederatedModelWrapper',
    'assign_clients_to_ranks', 'ClientRoundBatchSampler',
    'ClientSeededBatchSampler', 'FedAvgServer',
    'ClusteredServer', 'ScaffoldServer', 'ClientTrainer', 'FedProxTrainer',
    'FedEMATrainer', 'ScaffoldTrainer', 'ClientTask', 'ClientResult'
]

from .clustered_server import ClusteredServer
from .fedavg_server import FedAvgServer

__all__ = ['FedAvgServer', 'ClusteredServer']

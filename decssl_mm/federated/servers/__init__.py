from .clustered_server import ClusteredServer
from .fedavg_server import FedAvgServer
from .scaffold_server import ScaffoldServer

__all__ = ['FedAvgServer', 'ClusteredServer', 'ScaffoldServer']

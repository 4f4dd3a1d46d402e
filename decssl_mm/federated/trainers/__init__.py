from .client_trainer import ClientTrainer, StateNotSaved
from .fedema_trainer import FedEMATrainer
from .fedprox_trainer import FedProxTrainer

__all__ = ['ClientTrainer', 'StateNotSaved', 'FedProxTrainer',
           'FedEMATrainer']

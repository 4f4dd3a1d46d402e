from .client_trainer import ClientTrainer
from .fedema_trainer import FedEMATrainer
from .fedprox_trainer import FedProxTrainer
from .scaffold_trainer import ScaffoldTrainer

__all__ = ['ClientTrainer', 'FedProxTrainer', 'FedEMATrainer',
           'ScaffoldTrainer']

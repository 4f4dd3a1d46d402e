"""A model wrapper for federated training: no gradient synchronisation."""
from typing import Any, Dict, Union

import torch
import torch.nn as nn
from mmengine.dist import broadcast, is_distributed
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import OptimWrapper

from decssl_mm.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class FederatedModelWrapper(nn.Module):
    """Wrap the model of a distributed federated run without DDP.

    Under ``dist_train.sh`` every rank trains *different* clients, so
    gradients must never be averaged across ranks (DDP would mix clients and
    force every rank to run the same number of iterations). Ranks meet only
    in the aggregator's all-reduce at the end of a round. The wrapper
    broadcasts rank 0's initial weights so that every rank starts from the
    same global model, and delegates ``train_step``/``val_step``/
    ``test_step`` to the model. SyncBatchNorm layers (the default of several
    mmpretrain necks) are turned into plain BatchNorm: synchronising batch
    statistics across ranks would mix different clients' data.

    Args:
        module (nn.Module): The model (an mmengine ``BaseModel``).
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = revert_sync_batchnorm(module)
        if is_distributed():
            with torch.no_grad():
                for t in list(module.parameters()) + list(module.buffers()):
                    broadcast(t.data, src=0)

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: OptimWrapper) -> Dict[str, torch.Tensor]:
        return self.module.train_step(data, optim_wrapper)

    def val_step(self, data: Union[dict, tuple, list]) -> Any:
        return self.module.val_step(data)

    def test_step(self, data: Union[dict, tuple, list]) -> Any:
        return self.module.test_step(data)

    def forward(self, *args, **kwargs) -> Any:
        return self.module(*args, **kwargs)

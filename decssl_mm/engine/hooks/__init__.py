from .atomic_checkpoint_hook import AtomicCheckpointHook
from .backbone_bn_hook import BackboneBNRecalibrationHook
from .channels_last_hook import ChannelsLastHook

__all__ = [
    'AtomicCheckpointHook', 'BackboneBNRecalibrationHook', 'ChannelsLastHook'
]

from .atomic_checkpoint_hook import AtomicCheckpointHook
from .channels_last_hook import ChannelsLastHook

__all__ = ['AtomicCheckpointHook', 'ChannelsLastHook']

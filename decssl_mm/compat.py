"""The one place where the OpenMMLab 2.x stack is made to work with today's
torch (>= 2.6) and numpy (>= 2).

:func:`apply_all` runs when ``decssl_mm`` is imported. Every fix patches
behaviour at run time (never a file in site-packages), is idempotent, and has
a test in ``tests/test_compat.py`` that fails without it.

1. ``torch.load(weights_only=True)`` (the default since torch 2.6) refuses
   mmengine checkpoints: they hold mmengine ``HistoryBuffer`` objects and
   numpy scalars/arrays (message hub, meta). We allowlist exactly those types
   with ``torch.serialization.add_safe_globals``, and make ``HistoryBuffer``
   pickle and unpickle as data only. mmengine adds the class's statistics
   methods to every buffer's state (pickled through ``builtins.getattr``)
   and, on unpickling, merges the file's methods into the *class-level*
   method table, so an allowlisted file could rebind ``mean`` for every
   buffer of the process. Our ``__getstate__`` leaves the methods out; our
   ``__setstate__`` takes only the buffer's data (``max_length`` and the two
   history arrays) and never touches class state. Loading still cannot run
   code (no callable such as ``getattr`` or ``os.system`` is allowed), so
   ``--resume`` and ``init_cfg=dict(type='Pretrained')`` work without
   turning the protection off. Checkpoints written by mmengine *without*
   decssl_mm imported still carry ``getattr`` and are refused.
2. numpy >= 2: mmcv 2.1.0 ``adjust_hue`` computes ``np.uint8(hue * 255)``,
   which raises ``OverflowError`` for a negative hue factor (MoCoV2/SimCLR
   ``ColorJitter``). We route ``mmcv.adjust_hue`` to an implementation that
   wraps the hue shift modulo 256 as numpy 1 did.
3. torchrun on a machine without CUDA: mmengine's pytorch launcher calls
   ``torch.cuda.set_device`` and defaults to NCCL, and the Runner wraps DDP
   with ``device_ids=[local_rank]``; both fail on CPU. Without CUDA we
   initialise the process group with gloo and build DDP without
   ``device_ids``.

Crash-safe checkpoint writing and weights-only loading of every checkpoint
scheme are not fixes of this kind: they are registered components of
:mod:`decssl_mm.engine` (``AtomicCheckpointHook``, the ``atomic_local`` file
backend, ``CheckpointLoader`` schemes).
"""
import os
from typing import List

import numpy as np
import torch

_APPLIED: List[str] = []


# --------------------------------------------------------------- 1. loading
def _numpy_safe_globals() -> list:
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    dtype_classes = []
    for code in '?bBhHiIlLqQefdgFDGUSV':
        try:
            dtype_classes.append(type(np.dtype(code)))
        except TypeError:  # pragma: no cover
            pass
    return [multiarray.scalar, multiarray._reconstruct, np.ndarray, np.dtype
            ] + dtype_classes


def _history_buffer_getstate(self) -> dict:
    """Pickle a ``HistoryBuffer`` as data only.

    mmengine adds the class's statistics methods (bound functions, pickled as
    ``builtins.getattr(HistoryBuffer, 'min')``) to every buffer's state;
    allowlisting ``getattr`` would reopen code execution. The methods are
    registered on the class at import time, so the state does not need them.
    """
    state = dict(self.__dict__)
    state.pop('statistics_methods', None)
    return state


def _history_buffer_setstate(self, state: dict) -> None:
    """Unpickle a ``HistoryBuffer`` from its data only.

    mmengine's ``__setstate__`` merges ``state['statistics_methods']`` into
    the class-level method table and copies every key of ``state`` into the
    instance. Here only ``max_length`` and the two history arrays are taken
    (other keys, the statistics methods among them, are ignored), so loading
    a file never changes class state nor shadows a method.
    """
    if not isinstance(state, dict):
        raise TypeError('HistoryBuffer state must be a dict, got '
                        f'{type(state).__name__}')
    max_length = state.get('max_length', 1000000)
    if isinstance(max_length, bool) or not isinstance(max_length, int) \
            or max_length < 1:
        raise ValueError('HistoryBuffer state: max_length must be a positive '
                         f'int, got {max_length!r}')
    logs = np.asarray(state.get('_log_history', ()))
    counts = np.asarray(state.get('_count_history', ()))
    if logs.ndim != 1 or counts.shape != logs.shape or \
            logs.dtype.kind not in 'biuf' or counts.dtype.kind not in 'biuf':
        raise ValueError('HistoryBuffer state: _log_history and '
                         '_count_history must be numeric 1-d arrays of one '
                         'length.')
    self._set_default_statistics()
    self.max_length = max_length
    self._log_history = logs
    self._count_history = counts


def allow_mmengine_checkpoint_types() -> None:
    """Allowlist the data types mmengine checkpoints contain (fix 1)."""
    from mmengine.logging.history_buffer import HistoryBuffer
    HistoryBuffer.__getstate__ = _history_buffer_getstate
    HistoryBuffer.__setstate__ = _history_buffer_setstate
    torch.serialization.add_safe_globals([HistoryBuffer] +
                                         _numpy_safe_globals())


# ---------------------------------------------------------------- 2. numpy
def adjust_hue(img: np.ndarray,
               hue_factor: float,
               backend: str = None) -> np.ndarray:
    """Shift the hue of a BGR image (numpy-2-safe ``mmcv.adjust_hue``).

    Args:
        img (np.ndarray): BGR image, ``H x W x 3``.
        hue_factor (float): Shift of the hue channel in [-0.5, 0.5]; 0 keeps
            the image, -0.5 and 0.5 give complementary colours.
        backend (str, optional): ``'cv2'`` or ``'pillow'``; None uses mmcv's
            current image backend.

    Returns:
        np.ndarray: The hue-adjusted image, dtype of ``img``.
    """
    import cv2
    import mmcv.image.io as mmcv_io
    from PIL import Image
    backend = backend or mmcv_io.imread_backend
    if backend not in ('cv2', 'pillow'):
        raise ValueError(f'backend: {backend} is not supported. Supported '
                         "backends are 'cv2', 'pillow'")
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f'hue_factor:{hue_factor} is not in [-0.5, 0.5].')
    if not (isinstance(img, np.ndarray) and img.ndim in (2, 3)):
        raise TypeError('img should be ndarray with dim=[2 or 3].')
    # C-style truncation, then wrap-around: what numpy 1 did implicitly.
    shift = np.uint8(int(hue_factor * 255) % 256)
    if backend == 'pillow':
        assert img.dtype == np.uint8, 'Pillow backend only support uint8 type'
        pil = Image.fromarray(np.ascontiguousarray(img[..., ::-1]), 'RGB')
        h, s, v = pil.convert('HSV').split()
        hue = np.array(h, dtype=np.uint8) + shift  # uint8 wraps around
        out = Image.merge('HSV', (Image.fromarray(hue, 'L'), s, v))
        return np.array(out.convert('RGB'), dtype=img.dtype)[..., ::-1]
    dtype = img.dtype
    hsv = cv2.cvtColor(img.astype(np.uint8), cv2.COLOR_BGR2HSV_FULL)
    h, s, v = cv2.split(hsv)
    h = (h.astype(np.uint8) + shift).astype(np.uint8)
    out = cv2.cvtColor(cv2.merge([h, s, v]), cv2.COLOR_HSV2BGR_FULL)
    return out.astype(dtype)


def patch_adjust_hue() -> None:
    """Route every public handle of ``mmcv.adjust_hue`` to ours (fix 2)."""
    import mmcv
    import mmcv.image
    import mmcv.image.photometric as photometric
    for mod in (mmcv, mmcv.image, photometric):
        mod.adjust_hue = adjust_hue


# --------------------------------------------------------- 3. CPU torchrun
def _cpu_init_dist_pytorch(backend: str = 'nccl',
                           init_backend: str = 'torch',
                           **kwargs) -> None:
    """mmengine's pytorch launcher for machines without CUDA (gloo)."""
    import torch.distributed as torch_dist
    if backend == 'nccl':
        backend = 'gloo'
    if init_backend != 'torch':
        raise ValueError('Only init_backend="torch" is supported without '
                         f'CUDA, got {init_backend!r}.')
    torch_dist.init_process_group(
        backend=backend,
        rank=int(os.environ['RANK']),
        world_size=int(os.environ['WORLD_SIZE']),
        **kwargs)


def patch_cpu_distributed() -> None:
    """Make ``--launcher pytorch`` work without CUDA (fix 3)."""
    import mmengine.dist.utils as dist_utils
    from mmengine.model.wrappers import distributed as mm_ddp

    original_init_dist = dist_utils._init_dist_pytorch
    if getattr(original_init_dist, '_decssl_patched', False):
        return

    def init_dist_pytorch(backend='nccl', init_backend='torch', **kwargs):
        if torch.cuda.is_available():
            return original_init_dist(backend, init_backend=init_backend,
                                      **kwargs)
        return _cpu_init_dist_pytorch(backend, init_backend, **kwargs)

    init_dist_pytorch._decssl_patched = True
    dist_utils._init_dist_pytorch = init_dist_pytorch

    cls = mm_ddp.MMDistributedDataParallel
    original_ddp_init = cls.__init__

    def ddp_init(self, module, detect_anomalous_params=False, **kwargs):
        on_cpu = all(p.device.type == 'cpu' for p in module.parameters())
        if on_cpu:
            kwargs.pop('device_ids', None)
            kwargs.pop('output_device', None)
        original_ddp_init(
            self,
            module=module,
            detect_anomalous_params=detect_anomalous_params,
            **kwargs)

    cls.__init__ = ddp_init


def apply_all() -> List[str]:
    """Apply every fix once; return the names of the applied fixes."""
    for name, fix in (('weights_only_allowlist',
                       allow_mmengine_checkpoint_types),
                      ('numpy2_adjust_hue', patch_adjust_hue),
                      ('cpu_torchrun', patch_cpu_distributed)):
        if name not in _APPLIED:
            fix()
            _APPLIED.append(name)
    return list(_APPLIED)

"""FeatARC: any self-supervised algorithm plus a feature-alignment term."""
import copy
from typing import Dict, List, Mapping, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel

from decssl_mm.evaluation.features import pooled_embedding
from decssl_mm.registry import MODELS
from .projections import capture_neck, view_projections

__all__ = ['FeatARC', 'pooled_embedding']

_BACKBONE_PREFIX = 'backbone.'


@MODELS.register_module()
class FeatARC(BaseModel):
    """Wrap a self-supervised algorithm and add FeatARC's alignment term.

    The wrapped algorithm (any mmpretrain self-supervised model: MoCo,
    SimCLR, BYOL, SimSiam, MoCoV3, BarlowTwins, DenseCL, SwAV) is built from
    ``algorithm`` and its child modules and own buffers are *adopted*: they
    become children/buffers of this model under the same names, so the state
    dict has exactly the keys of the plain algorithm (``backbone.*``,
    ``neck.*``, ``head.*``, ``momentum_encoder.*``, ``queue``, ...) and
    FeatARC checkpoints are exported and evaluated like any other. The loss
    is the algorithm's loss plus

    ``loss_align = align_weight * (-1/2) * (<g, z1> + <g, z2>)``

    averaged over the batch, where ``z1``, ``z2`` are the normalised pooled
    backbone features (:func:`pooled_embedding`) of the two views under the
    model being trained, and ``g`` is the *reference* feature of the same
    sample: the normalised mean of the reference backbone's normalised
    features of the two views. The reference backbone is a frozen copy of the
    backbone (same layer on both sides), evaluated in eval mode (BatchNorm
    running statistics, no gradient); FeatARC's loop loads it with the
    round-start model of the client's cluster (:meth:`set_reference`). It is
    kept out of the state dict, the parameter list and the optimizer.

    ``z1``/``z2`` come from one extra forward of the trained backbone on the
    two views (concatenated into one batch), so every algorithm works
    unchanged whatever it does with its views; this costs one more backbone
    forward/backward per step. With ``align_weight=0`` nothing extra is
    computed and the model trains exactly as the plain algorithm.

    **As the paper ran it** (the clustered server's ``mode='paper'`` calls
    :meth:`set_alignment_targets` instead of :meth:`set_reference`):

    ``loss_align = align_weight * (-1/2) * (<g, p1> + <g, p2>)``

    where ``p1``, ``p2`` are the normalised *projector (neck) outputs* of the
    two views that the algorithm's own ``loss()`` computes (recorded by a
    forward hook: no extra pass, BatchNorm statistics move once per step),
    and ``g`` is the cluster model's eval-mode, normalised backbone feature
    of the same sample's un-augmented image, precomputed by the server
    (looked up by ``data_sample.sample_idx``). Where the online projector
    sees one view only (MoCo, DenseCL) the term is ``-<g, p1>``. Where the
    projector's dimension ``D_p`` differs from the backbone's ``D_b`` the
    targets are mapped by a fixed random orthonormal ``D_b x D_p`` matrix
    (seeded, the same for every client) and renormalised; with equal
    dimensions (the paper's 512 and 512) they are used as they are.

    Args:
        algorithm (dict | nn.Module): The self-supervised algorithm (config
            or module). Its first two inputs are the two views aligned.
        align_weight (float): ``lambda`` of the alignment term. Defaults to
            1.0.
        data_preprocessor (dict | nn.Module, optional): Passed to the
            algorithm when its config has none (mmengine's Runner puts the
            config's top-level ``data_preprocessor`` here).
        init_cfg (dict, optional): Unused (the algorithm's own ``init_cfg``
            applies); accepted for mmengine compatibility.
    """

    def __init__(self,
                 algorithm: Union[dict, nn.Module],
                 align_weight: float = 1.0,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if align_weight < 0:
            raise ValueError('model.align_weight must be >= 0, got '
                             f'{align_weight}.')
        algo = self._build_algorithm(algorithm, data_preprocessor)
        super().__init__(data_preprocessor=algo.data_preprocessor)
        # adopt first: hasattr() must not see the algorithm's attributes yet
        for name, child in algo.named_children():
            if name != 'data_preprocessor':
                self.add_module(name, child)
        self._adopted_buffers: List[str] = []
        for name, buf in algo.named_buffers(recurse=False):
            persistent = name not in algo._non_persistent_buffers_set
            self.register_buffer(name, buf, persistent=persistent)
            self._adopted_buffers.append(name)
        object.__setattr__(self, '_algorithm', algo)
        if not isinstance(getattr(algo, 'backbone', None), nn.Module):
            raise ValueError('model.algorithm must have a backbone module.')
        reference = copy.deepcopy(algo.backbone)
        reference.requires_grad_(False)
        reference.eval()
        object.__setattr__(self, '_reference', reference)
        self.align_weight = float(align_weight)
        self.has_reference = False
        #: 'ours' after set_reference, 'paper' after set_alignment_targets
        self.align_mode: Optional[str] = None
        self._target_index: Optional[torch.Tensor] = None
        self._target_feats: Optional[torch.Tensor] = None

    @staticmethod
    def _build_algorithm(algorithm, data_preprocessor) -> nn.Module:
        if isinstance(algorithm, nn.Module):
            return algorithm
        if not isinstance(algorithm, dict) or 'type' not in algorithm:
            raise TypeError('model.algorithm must be a model config dict '
                            "(e.g. dict(type='SimCLR', ...)) or a module, "
                            f'got {type(algorithm).__name__}.')
        algorithm = copy.deepcopy(algorithm)
        if data_preprocessor is not None:
            algorithm.setdefault('data_preprocessor', data_preprocessor)
        if MODELS.get(algorithm['type']) is None:
            raise KeyError(f"model.algorithm.type {algorithm['type']!r} is "
                           'not a registered model.')
        return MODELS.build(algorithm)

    # ------------------------------------------------------ module plumbing
    @property
    def algorithm(self) -> nn.Module:
        """The wrapped algorithm (shares every module with this model)."""
        return self._algorithm

    @property
    def reference(self) -> nn.Module:
        """The frozen reference backbone (not in the state dict)."""
        return self._reference

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            algo = self.__dict__.get('_algorithm')
            if algo is None:
                raise
            return getattr(algo, name)

    def _apply(self, fn, recurse: bool = True):
        super()._apply(fn, recurse)
        # moving/casting may replace our buffer tensors: re-link them
        for name in self._adopted_buffers:
            self._algorithm._buffers[name] = self._buffers[name]
        self._reference._apply(fn)
        return self

    def train(self, mode: bool = True) -> 'FeatARC':
        super().train(mode)
        self._algorithm.training = mode
        self._reference.eval()
        return self

    def init_weights(self) -> None:
        """Initialise exactly as the plain algorithm would."""
        self._algorithm.init_weights()
        self._is_init = True

    # ------------------------------------------------------------ reference
    @torch.no_grad()
    def set_reference(self, state: Mapping[str, torch.Tensor]) -> None:
        """Load the frozen reference backbone from a model state dict.

        Args:
            state (Mapping[str, Tensor]): A state dict of this model (keys
                ``backbone.*`` are read), e.g. a cluster model.
        """
        ref = {
            k[len(_BACKBONE_PREFIX):]: v
            for k, v in state.items() if k.startswith(_BACKBONE_PREFIX)
        }
        if not ref:
            raise ValueError('set_reference: the state dict has no '
                             f"'{_BACKBONE_PREFIX}*' keys.")
        self._reference.load_state_dict(ref, strict=True)
        self._reference.eval()
        self.has_reference = True
        self.align_mode = 'ours'

    def set_alignment_targets(self, indices: torch.Tensor,
                              feats: torch.Tensor) -> None:
        """Targets of the paper's alignment: one feature per sample index.

        Args:
            indices (Tensor): Global sample indices, ``N`` (int64).
            feats (Tensor): Their normalised eval-mode features ``N x D``
                under the cluster model the client starts from.
        """
        indices = torch.as_tensor(indices, dtype=torch.int64).flatten()
        if feats.ndim != 2 or feats.shape[0] != indices.numel():
            raise ValueError('set_alignment_targets: one feature row per '
                             f'index expected, got {tuple(feats.shape)} '
                             f'for {indices.numel()} indices.')
        order = torch.argsort(indices)
        self._target_index = indices[order]
        self._target_feats = feats[order].detach().float()
        self.align_mode = 'paper'

    def alignment_targets(self, data_samples: list) -> torch.Tensor:
        """The target rows of a batch's samples (by ``sample_idx``)."""
        if self._target_index is None or data_samples is None:
            raise RuntimeError('FeatARC (paper mode): no alignment targets; '
                               'the clustered server sets them per client.')
        idx = torch.tensor([int(ds.sample_idx) for ds in data_samples],
                           dtype=torch.int64)
        pos = torch.searchsorted(self._target_index, idx).clamp(
            max=self._target_index.numel() - 1)
        missing = self._target_index[pos] != idx
        if bool(missing.any()):
            raise KeyError('FeatARC (paper mode): no target for samples '
                           f'{idx[missing][:5].tolist()} of this client.')
        return self._target_feats[pos]

    def set_reference_from_backbone(self) -> None:
        """Use a copy of the current backbone as the reference."""
        self.set_reference({
            _BACKBONE_PREFIX + k: v
            for k, v in self.backbone.state_dict().items()
        })

    # ----------------------------------------------------------------- loss
    def alignment(self, view1: torch.Tensor,
                  view2: torch.Tensor) -> torch.Tensor:
        """Mean ``(<g, z1> + <g, z2>) / 2`` over the batch (differentiable).

        Args:
            view1 (Tensor): First views, ``N x C x H x W``.
            view2 (Tensor): Second views, same shape.

        Returns:
            Tensor: Scalar mean similarity in ``[-1, 1]``.
        """
        if not self.has_reference:
            raise RuntimeError(
                'FeatARC: model.align_weight > 0 needs a reference model; '
                "train with train_cfg.server=dict(type='ClusteredServer', "
                "mode='ours', ...) (which sends the cluster model) or call "
                'set_reference() first.')
        n = view1.shape[0]
        both = torch.cat([view1, view2]) if view1.shape == view2.shape \
            else None
        with torch.no_grad():
            if both is not None:
                r = pooled_embedding(self._reference, both)
                r1, r2 = r[:n], r[n:]
            else:
                r1 = pooled_embedding(self._reference, view1)
                r2 = pooled_embedding(self._reference, view2)
            g = F.normalize(r1 + r2, dim=1)
        if both is not None:
            z = pooled_embedding(self.backbone, both)
            z1, z2 = z[:n], z[n:]
        else:
            z1 = pooled_embedding(self.backbone, view1)
            z2 = pooled_embedding(self.backbone, view2)
        return 0.5 * ((g * z1).sum(1) + (g * z2).sum(1)).mean()

    def paper_alignment(self, calls: List[torch.Tensor],
                        data_samples: list) -> torch.Tensor:
        """Mean ``<g, p_v>`` over the batch and the views (differentiable).

        Args:
            calls (list[Tensor]): The neck outputs recorded in ``loss()``.
            data_samples (list): The batch's data samples (``sample_idx``).
        """
        g = self.alignment_targets(data_samples)
        views = view_projections(calls, len(data_samples),
                                 type(self._algorithm).__name__)
        sims = []
        for p in views:
            target = match_dim(g, p.shape[1]).to(p.device, p.dtype)
            sims.append((target * F.normalize(p, dim=1)).sum(1).mean())
        return torch.stack(sims).mean()

    def loss(self, inputs: List[torch.Tensor],
             data_samples: Optional[list] = None) -> Dict[str, torch.Tensor]:
        """The algorithm's losses plus ``loss_align`` (when lambda > 0)."""
        if self.align_weight > 0 and self.align_mode == 'paper':
            with capture_neck(self._algorithm.neck) as calls:
                losses = self._algorithm.loss(inputs, data_samples)
            sim = self.paper_alignment(calls, data_samples)
            losses['loss_align'] = -self.align_weight * sim
            losses['align_sim'] = sim.detach()
            return losses
        losses = self._algorithm.loss(inputs, data_samples)
        if self.align_weight > 0:
            if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
                raise ValueError('FeatARC needs at least two views per '
                                 'sample (a MultiView pipeline).')
            sim = self.alignment(inputs[0], inputs[1])
            losses['loss_align'] = -self.align_weight * sim
            losses['align_sim'] = sim.detach()
        return losses

    def forward(self,
                inputs: Union[torch.Tensor, List[torch.Tensor]],
                data_samples: Optional[list] = None,
                mode: str = 'tensor'):
        """``'loss'``: :meth:`loss`; other modes go to the algorithm."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        return self._algorithm(inputs, data_samples, mode=mode)


_PROJECTION_SEED = 0xFEA7


def match_dim(g: torch.Tensor, dim: int) -> torch.Tensor:
    """Targets ``N x D_b`` as ``N x dim`` unit vectors (see :class:`FeatARC`).

    Identity when the dimensions agree; otherwise a fixed, seeded random
    matrix with orthonormal columns (rows when ``dim > D_b``) maps them.
    """
    if g.shape[1] == dim:
        return g
    gen = torch.Generator().manual_seed(_PROJECTION_SEED + 1000 * g.shape[1]
                                        + dim)
    m = torch.randn(max(g.shape[1], dim), min(g.shape[1], dim),
                    generator=gen)
    q, _ = torch.linalg.qr(m)
    proj = q if g.shape[1] >= dim else q.t()
    return F.normalize(g.float() @ proj, dim=1)

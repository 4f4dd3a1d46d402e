"""Figures of the evaluations on a tiny fixed model, for comparing the
implementation with the figures recorded before it changed."""
import os.path as osp
from typing import Dict

from mmengine.registry import init_default_scope

from ._tiny import SIMCLR, tiny_study_cfg

GOLDEN = osp.join(osp.dirname(osp.abspath(__file__)), 'golden_figures.json')
EVAL_NAMES = ('knn', 'linear', 'knn_bnre', 'linear_bnre')
SEEDS = (0, 7)


def golden_figures(fmnist_root: str, work_dir: str) -> Dict[str, dict]:
    """kNN (k=20) and linear-probe (5 epochs) figures, plain and after BN
    re-estimation, of the tiny SimCLR model untrained (seeds 0 and 7) and
    of its untrained references, through ``evaluate_checkpoint``.

    Args:
        fmnist_root (str): The tiny Fashion-MNIST of the tests.
        work_dir (str): A folder for the config's work dir.

    Returns:
        dict: ``{'seed<s>': {'metrics': ..., 'references': ...}}``.
    """
    from decssl_mm.evaluation import evaluate_checkpoint
    init_default_scope('decssl_mm')
    cfg = tiny_study_cfg(SIMCLR, fmnist_root, work_dir)
    out = {}
    for seed in SEEDS:
        result = evaluate_checkpoint(cfg, None, evals=EVAL_NAMES,
                                     knn=dict(k=20), probe=dict(epochs=5),
                                     seed=seed)
        out[f'seed{seed}'] = dict(metrics=result['metrics'],
                                  references=result['references'])
    return out

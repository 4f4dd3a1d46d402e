"""Diagnose a classifier's own head (e.g. Dec-SL): is it trained or collapsed?

    python tools/analysis/head_diagnosis.py CONFIG CHECKPOINT [--json OUT]
        [--cfg-options k=v ...]

CONFIG builds the classifier (``model`` + ``data_preprocessor``) and gives
the labelled test data: the query loader of
:func:`decssl_mm.evaluation.find_eval_loaders` (``knn_val_dataloader``, or
a ``KNNEvalHook``'s ``val_dataloader``). Prints the head's top-1 accuracy
beside the same classifier untrained (model init / PyTorch default init,
seeded by ``randomness.seed``), how its predictions spread over the
classes against the true class counts, the share of the most predicted
class, and the norm of every class row of the last linear layer. A head
that predicts one class for most images while its rows are barely larger
than at initialisation is undertrained, not miscalibrated: the training
schedule, not the evaluation, is what to change.
"""
import argparse
import json
import os.path as osp
import sys
from typing import List, Optional

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='classifier head diagnosis')
    parser.add_argument('config', help='config of the classifier and data')
    parser.add_argument('checkpoint', help='checkpoint of the classifier')
    parser.add_argument('--json', default=None,
                        help='also write the summary to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings')
    return parser.parse_args(argv)


def _last_linear(head):
    """The last ``nn.Linear`` of a head (``fc`` of ``LinearClsHead``)."""
    import torch.nn as nn
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


def summarize(scores, labels, weight=None) -> dict:
    """Accuracy, prediction spread and class-row norms of a head.

    Args:
        scores (torch.Tensor): (N, C) head scores.
        labels (torch.Tensor): (N,) true classes.
        weight (torch.Tensor, optional): (C, D) last linear layer weight.

    Returns:
        dict: ``top1`` (percent), ``pred_counts`` and ``true_counts`` (per
        class), ``majority_class``, ``majority_share`` (percent of the
        predictions), ``row_norms`` (per class, when ``weight`` is given).
    """
    import torch
    num_classes = scores.shape[1]
    pred = scores.argmax(dim=1)
    pred_counts = torch.bincount(pred, minlength=num_classes)
    true_counts = torch.bincount(labels, minlength=num_classes)
    out = dict(
        top1=round(100.0 * float((pred == labels).float().mean()), 2),
        pred_counts=pred_counts.tolist(),
        true_counts=true_counts.tolist(),
        majority_class=int(pred_counts.argmax()),
        majority_share=round(
            100.0 * float(pred_counts.max()) / max(1, pred.numel()), 2))
    if weight is not None:
        out['row_norms'] = [round(float(v), 4)
                            for v in weight.detach().norm(dim=1)]
    return out


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    from decssl_mm.evaluation import (EvalConfigError, build_untrained_model,
                                      eval_model_cfg, find_eval_loaders,
                                      load_eval_model)
    from decssl_mm.evaluation.knn import build_knn_dataloader
    from decssl_mm.evaluation.linear_probe import (classifier_predictions,
                                                   has_classifier_head)
    from decssl_mm.registry import MODELS
    from decssl_mm.utils.io import atomic_write_text
    from decssl_mm.utils.tool_config import load_tool_config

    cfg = load_tool_config(args.config, args.cfg_options)
    try:
        _, loader_cfg = find_eval_loaders(cfg, args.config)
    except EvalConfigError as e:
        raise SystemExit(f'head_diagnosis: error: {e}')
    model = MODELS.build(eval_model_cfg(cfg))
    if not has_classifier_head(model):
        raise SystemExit(f'{args.config}: model {cfg.model.get("type")!r} '
                         'has no classifier head to diagnose')
    model, ckpt_info = load_eval_model(cfg, args.checkpoint, model=model)
    if ckpt_info['loaded'] != 'model':
        raise SystemExit(f'{args.checkpoint}: holds a backbone only, no '
                         'classifier head to diagnose')
    rnd = ckpt_info['round']
    loader = build_knn_dataloader(loader_cfg)
    scores, labels = classifier_predictions(model, loader)
    fc = _last_linear(model.head)
    info = summarize(scores, labels, fc.weight if fc is not None else None)
    info.update(checkpoint=args.checkpoint, round=rnd)
    seed = int((cfg.get('randomness') or {}).get('seed') or 0)
    for name, init in (('untrained_init', 'model'),
                       ('untrained_default', 'default')):
        untrained = build_untrained_model(cfg, init, seed)
        info[f'top1_{name}'] = summarize(
            *classifier_predictions(untrained, loader))['top1']
    print(f'{args.checkpoint} (round {rnd}): top-1 {info["top1"]:.2f} % '
          f'(untrained: {info["top1_untrained_init"]:.2f} % model init, '
          f'{info["top1_untrained_default"]:.2f} % PyTorch default init), '
          f'{info["majority_share"]:.1f} % of the predictions are class '
          f'{info["majority_class"]}')
    print(f'  predicted per class: {info["pred_counts"]}')
    print(f'  true per class:      {info["true_counts"]}')
    if 'row_norms' in info:
        print(f'  class-row norms of the last linear layer: '
              f'{info["row_norms"]}')
    if args.json:
        atomic_write_text(json.dumps(info, indent=1) + "\n", args.json)
    return info


if __name__ == '__main__':
    main()

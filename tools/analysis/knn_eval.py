"""Weighted-kNN accuracy of the backbone of a checkpoint.

    python tools/analysis/knn_eval.py CONFIG CHECKPOINT [--cluster N]
        [--k 200] [--temperature 0.1]
        [--cfg-options k=v ...]

CONFIG builds the model (``model``, e.g. a pre-training config) and gives
the labelled data: ``knn_train_dataloader`` (the feature bank) and
``knn_val_dataloader`` (the queries; ``val_dataloader`` when absent), or the
dataloaders of a ``KNNEvalHook`` in ``custom_hooks``. CHECKPOINT is a
federated checkpoint or a file of ``extract_backbone.py``; only its backbone
is loaded, after a shape check against ``model.backbone``; the feature is
its global-average-pooled last stage.
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='kNN evaluation')
    parser.add_argument('config', help='config with the model and kNN data')
    parser.add_argument('checkpoint', help='checkpoint or extracted backbone')
    parser.add_argument('--cluster', type=int, default=None,
                        help='FeatARC cluster model to evaluate')
    parser.add_argument('--k', type=int, default=200)
    parser.add_argument('--temperature', type=float, default=0.1)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings')
    return parser.parse_args(argv)


def knn_loader_cfgs(cfg) -> Tuple[dict, dict]:
    """The (bank, query) dataloader configs of a config."""
    for hook in cfg.get('custom_hooks') or ():
        if str(hook.get('type', '')).split('.')[-1] == 'KNNEvalHook':
            return hook['train_dataloader'], hook['val_dataloader']
    train = cfg.get('knn_train_dataloader')
    val = cfg.get('knn_val_dataloader') or cfg.get('val_dataloader')
    if train is None or val is None:
        raise ValueError(
            'the config needs knn_train_dataloader and knn_val_dataloader '
            '(or val_dataloader), or a KNNEvalHook in custom_hooks')
    return train, val


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    from decssl_mm.evaluation.export import (check_backbone_compat,
                                             extract_backbone_state)
    from decssl_mm.evaluation.knn import build_knn_dataloader, knn_evaluate
    from decssl_mm.registry import MODELS
    from decssl_mm.utils.tool_config import (load_tool_config,
                                             model_cfg_like_runner)

    cfg = load_tool_config(args.config, args.cfg_options)
    train_cfg, val_cfg = knn_loader_cfgs(cfg)

    state, info = extract_backbone_state(args.checkpoint, args.cluster)
    check_backbone_compat(state, cfg.model, args.checkpoint)
    model = MODELS.build(model_cfg_like_runner(cfg))
    model.backbone.load_state_dict(state, strict=True)

    metrics = knn_evaluate(
        model,
        build_knn_dataloader(train_cfg),
        build_knn_dataloader(val_cfg),
        k=args.k,
        temperature=args.temperature)
    where = f" (cluster {info['cluster']})" if info['cluster'] >= 0 else ''
    print(f"kNN k={args.k} T={args.temperature} on {args.checkpoint}{where}, "
          f"round {info['round']}: " +
          ', '.join(f'{k} {v:.2f}' for k, v in metrics.items()))
    return metrics


if __name__ == '__main__':
    main()

"""Evaluation of self-supervised models: kNN and backbone export."""
from .export import (check_backbone_compat, extract_backbone_state,
                     infer_resnet_depth, save_backbone)
from .knn import (build_knn_dataloader, extract_features, knn_accuracy,
                  knn_evaluate, knn_predict)
from .knn_hook import KNNEvalHook
from .linear_probe import (classifier_accuracy, linear_probe_evaluate,
                           train_linear_probe)  # noqa: F401

__all__ = [
    'check_backbone_compat', 'extract_backbone_state', 'infer_resnet_depth',
    'save_backbone', 'build_knn_dataloader', 'extract_features',
    'knn_accuracy', 'knn_evaluate', 'knn_predict', 'KNNEvalHook'
]

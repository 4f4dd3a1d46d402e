"""Evaluation of self-supervised models: registered evaluations (kNN,
linear probe, nearest class mean, ...), untrained references, backbone
export."""
from .evaluate import (DEFAULT_EVALS, evaluate_checkpoint,
                       evaluation_options, feature_metrics)
from .evaluation_hook import EvaluationHook
from .evaluations import (BaseEvaluation, EvalContext, EvaluationNameError,
                          FrozenFeatures, build_evaluation,
                          build_evaluations, evaluation_names,
                          run_evaluations)
from .export import (check_backbone_compat, extract_backbone_state,
                     infer_resnet_depth, save_backbone)
from .features import backbone_output, pool_output, pooled_embedding
from .knn import (build_knn_dataloader, extract_features, knn_accuracy,
                  knn_evaluate, knn_predict)
from .knn_hook import KNNEvalHook
from .linear_probe import (classifier_accuracy, linear_probe_evaluate,
                           train_linear_probe)
from .loaders import EVAL_LOADER_KEYS, EvalConfigError, find_eval_loaders
from .model_loading import eval_model_cfg, load_eval_model
from .untrained import (UNTRAINED_INITS, build_untrained_model,
                        untrained_metrics)

__all__ = [
    'DEFAULT_EVALS', 'evaluate_checkpoint', 'evaluation_options',
    'feature_metrics', 'EvaluationHook', 'BaseEvaluation', 'EvalContext',
    'EvaluationNameError', 'FrozenFeatures', 'build_evaluation',
    'build_evaluations', 'evaluation_names', 'run_evaluations',
    'check_backbone_compat', 'extract_backbone_state', 'infer_resnet_depth',
    'save_backbone', 'backbone_output', 'pool_output', 'pooled_embedding',
    'build_knn_dataloader', 'extract_features', 'knn_accuracy',
    'knn_evaluate', 'knn_predict', 'KNNEvalHook', 'classifier_accuracy',
    'linear_probe_evaluate', 'train_linear_probe', 'EVAL_LOADER_KEYS',
    'EvalConfigError', 'find_eval_loaders', 'eval_model_cfg',
    'load_eval_model', 'UNTRAINED_INITS', 'build_untrained_model',
    'untrained_metrics'
]

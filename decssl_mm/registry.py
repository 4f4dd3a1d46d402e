"""Registries of decssl_mm.

Every OpenMMLab registry we build from is a *child* of mmpretrain's registry
of the same kind (scope ``decssl_mm``), so that a config with
``default_scope='decssl_mm'`` finds our components first and every mmpretrain
(and mmengine) component through the parent chain, e.g. ``type='MoCo'``.
Components of the federated engine that have no OpenMMLab counterpart get
root registries of their own (``PARTITIONERS``, ``AGGREGATORS``,
``CLIENT_SAMPLERS``, ``CLIENT_STATE_STORES``, ``CLIENT_TRAINERS``,
``SERVERS``), and so do the evaluations of frozen features
(``EVALUATIONS``: kNN, linear probe, ...), chosen by name by the evaluation
hook, ``tools/analysis/knn_eval.py`` and the study.
"""
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import Registry
from mmpretrain.utils import register_all_modules
from mmpretrain.registry import DATA_SAMPLERS as MMPRE_DATA_SAMPLERS
from mmpretrain.registry import DATASETS as MMPRE_DATASETS
from mmpretrain.registry import EVALUATORS as MMPRE_EVALUATORS
from mmpretrain.registry import HOOKS as MMPRE_HOOKS
from mmpretrain.registry import LOOPS as MMPRE_LOOPS
from mmpretrain.registry import METRICS as MMPRE_METRICS
from mmpretrain.registry import MODELS as MMPRE_MODELS
from mmpretrain.registry import TRANSFORMS as MMPRE_TRANSFORMS

__all__ = [
    'MODELS', 'DATASETS', 'TRANSFORMS', 'DATA_SAMPLERS', 'HOOKS', 'LOOPS',
    'METRICS', 'EVALUATOR', 'MODEL_WRAPPERS', 'PARTITIONERS', 'AGGREGATORS',
    'CLIENT_SAMPLERS', 'CLIENT_STATE_STORES', 'CLIENT_TRAINERS', 'SERVERS',
    'EVALUATIONS'
]

# A child registry looks up its parents' tables directly, without their lazy
# imports: register every mmpretrain component up front.
register_all_modules(init_default_scope=False)

MODELS = Registry(
    'model', parent=MMPRE_MODELS, locations=['decssl_mm.models'])
DATASETS = Registry(
    'dataset', parent=MMPRE_DATASETS, locations=['decssl_mm.datasets'])
TRANSFORMS = Registry(
    'transform', parent=MMPRE_TRANSFORMS, locations=['decssl_mm.datasets'])
DATA_SAMPLERS = Registry(
    'data sampler',
    parent=MMPRE_DATA_SAMPLERS,
    locations=['decssl_mm.federated'])
HOOKS = Registry(
    'hook',
    parent=MMPRE_HOOKS,
    locations=['decssl_mm.engine', 'decssl_mm.federated',
               'decssl_mm.evaluation'])
LOOPS = Registry(
    'loop', parent=MMPRE_LOOPS, locations=['decssl_mm.federated'])
METRICS = Registry(
    'metric', parent=MMPRE_METRICS, locations=['decssl_mm.evaluation'])
EVALUATOR = Registry(
    'evaluator', parent=MMPRE_EVALUATORS, locations=['decssl_mm.evaluation'])
# mmengine's Runner looks model wrappers up in its root registry, which sees
# only its direct children: ours hangs directly under mmengine's (mmpretrain
# adds no wrapper), so `type='decssl_mm.FederatedModelWrapper'` resolves.
MODEL_WRAPPERS = Registry(
    'model_wrapper',
    parent=MMENGINE_MODEL_WRAPPERS,
    locations=['decssl_mm.federated'])

# Every other kind of component (optimizers, schedulers, visualizers, ...)
# gets a plain child registry so that the whole Runner builds in our scope.
import mmpretrain.registry as _mmpre_registry  # noqa: E402

_OTHER_KINDS = ('RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOG_PROCESSORS',
                'OPTIMIZERS', 'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS',
                'PARAM_SCHEDULERS', 'WEIGHT_INITIALIZERS', 'BATCH_AUGMENTS',
                'TASK_UTILS', 'VISUALIZERS', 'VISBACKENDS')
for _kind in _OTHER_KINDS:
    _parent = getattr(_mmpre_registry, _kind)
    globals()[_kind] = Registry(_parent.name, parent=_parent)
__all__ += list(_OTHER_KINDS)

# Root registries of the federated engine.
PARTITIONERS = Registry('partitioner', locations=['decssl_mm.partition'])
AGGREGATORS = Registry('aggregator', locations=['decssl_mm.federated'])
CLIENT_SAMPLERS = Registry('client sampler', locations=['decssl_mm.federated'])
CLIENT_STATE_STORES = Registry(
    'client state store', locations=['decssl_mm.federated'])
CLIENT_TRAINERS = Registry(
    'client trainer', locations=['decssl_mm.federated.trainers'])
SERVERS = Registry('server', locations=['decssl_mm.federated.servers'])

# Evaluations of a model's frozen features; every module of the package is
# imported with it, so one file there adds one evaluation.
EVALUATIONS = Registry(
    'evaluation', locations=['decssl_mm.evaluation.evaluations'])

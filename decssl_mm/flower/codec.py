"""Tasks and results as Flower records (what crosses the network).

A :class:`ClientTask` travels as a ``RecordDict`` with an ``ArrayRecord``
``'start'`` (the exchanged keys of its start state; the other keys stay at
the site), a ``ConfigRecord`` ``'task'`` (ids, round, seed, the config
fingerprint, the task's config values) and one ``ArrayRecord`` per tensor
extra (``'extra.<name>'``). A :class:`ClientResult` travels as an
``ArrayRecord`` ``'arrays'`` (the exchanged keys of the update), a
``MetricRecord`` ``'metrics'`` (with ``'num-examples'``), a
``ConfigRecord`` ``'result'`` and its tensor extras. Its local state never
leaves the site. FeatARC's score query travels as an ``ArrayRecord``
``'clusters'`` and a ``ConfigRecord`` ``'score'``; the answer as a
``ConfigRecord`` ``'scores'``.
"""
from typing import Any, Dict, Iterable, List, Optional, Tuple

import torch
from flwr.app import ArrayRecord, ConfigRecord, MetricRecord, RecordDict

from decssl_mm.federated.messages import ClientResult, ClientTask

_EXTRA = 'extra.'
_SCALAR = '__value__'


def state_to_record(state: Dict[str, torch.Tensor],
                    keys: Iterable[str]) -> ArrayRecord:
    """The tensors of ``keys`` as an ``ArrayRecord`` (bit-exact)."""
    return ArrayRecord({k: _array(state[k]) for k in keys})


def _array(t: torch.Tensor):
    from flwr.app import Array
    return Array(t.detach().cpu().contiguous().numpy())


def record_to_state(record: ArrayRecord) -> Dict[str, torch.Tensor]:
    """An ``ArrayRecord`` as CPU tensors (bit-exact, in record order)."""
    return {k: torch.from_numpy(a.numpy().copy()) for k, a in record.items()}


def _extras_to_records(extras: Dict[str, Any], who: str) -> Dict:
    out = {}
    for name, value in extras.items():
        if torch.is_tensor(value):
            out[_EXTRA + name] = state_to_record({_SCALAR: value},
                                                 [_SCALAR])
        elif isinstance(value, dict) and all(
                torch.is_tensor(v) for v in value.values()):
            out[_EXTRA + name] = state_to_record(value, list(value))
        else:
            raise TypeError(
                f'{who} extra {name!r} is a {type(value).__name__}; over '
                'Flower an extra must be a tensor or a dict of tensors.')
    return out


def _records_to_extras(content: RecordDict) -> Dict[str, Any]:
    out = {}
    for name, record in content.array_records.items():
        if name.startswith(_EXTRA):
            state = record_to_state(record)
            out[name[len(_EXTRA):]] = state[_SCALAR] if list(state) == [
                _SCALAR] else state
    return out


def encode_task(task: ClientTask, fingerprint: str) -> RecordDict:
    """A task as the records of a ``train`` message."""
    meta = {'client-id': int(task.client_id), 'round': int(task.round_idx),
            'num-samples': int(task.num_samples), 'seed': int(task.seed),
            'exchanged-keys': list(task.exchanged_keys),
            'config-fingerprint': fingerprint}
    meta.update({'cfg.' + k: v for k, v in task.config.items()})
    content = {'start': state_to_record(task.start_state,
                                        task.exchanged_keys),
               'task': ConfigRecord(meta)}
    content.update(_extras_to_records(task.extras, 'task'))
    return RecordDict(content)


def decode_task(content: RecordDict) -> Tuple[ClientTask, str]:
    """A ``train`` message's records as a task and its fingerprint."""
    meta = content.config_records['task']
    config = {k[4:]: v for k, v in meta.items() if k.startswith('cfg.')}
    task = ClientTask(
        client_id=int(meta['client-id']), round_idx=int(meta['round']),
        start_state=record_to_state(content.array_records['start']),
        exchanged_keys=tuple(meta['exchanged-keys']),
        num_samples=int(meta['num-samples']), seed=int(meta['seed']),
        config=config, extras=_records_to_extras(content))
    return task, str(meta['config-fingerprint'])


def encode_result(result: ClientResult,
                  exchanged_keys: Iterable[str]) -> RecordDict:
    """A result as the records of a reply (its local state stays)."""
    metrics = {k: float(v) for k, v in result.metrics.items()}
    metrics['num-examples'] = int(result.num_samples)
    content = {
        'arrays': state_to_record(result.update, exchanged_keys),
        'metrics': MetricRecord(metrics),
        'result': ConfigRecord({'client-id': int(result.client_id),
                                'round': int(result.round_idx),
                                'num-samples': int(result.num_samples)}),
    }
    content.update(_extras_to_records(result.extras, 'result'))
    return RecordDict(content)


def decode_result(content: RecordDict) -> ClientResult:
    """A reply's records as a result (without local state)."""
    meta = content.config_records['result']
    metrics = {k: float(v) for k, v in content.metric_records[
        'metrics'].items() if k != 'num-examples'}
    return ClientResult(
        client_id=int(meta['client-id']), round_idx=int(meta['round']),
        update=record_to_state(content.array_records['arrays']),
        num_samples=int(meta['num-samples']), metrics=metrics,
        extras=_records_to_extras(content))


def encode_score_query(site_id: int, round_idx: int, seed: int,
                       clusters: Dict[str, torch.Tensor],
                       fingerprint: str) -> RecordDict:
    """FeatARC's first message of a round across sites: the round-start
    cluster backbones (``'<c>.<key>'``) a site scores."""
    return RecordDict({
        'clusters': state_to_record(clusters, list(clusters)),
        'score': ConfigRecord({'client-id': int(site_id),
                               'round': int(round_idx), 'seed': int(seed),
                               'config-fingerprint': fingerprint}),
    })


def decode_score_query(content: RecordDict) -> Tuple[dict, Dict, str]:
    """A score query as ``({'client-id', 'round', 'seed'}, clusters,
    fingerprint)``."""
    meta = content.config_records['score']
    ids = {k: int(meta[k]) for k in ('client-id', 'round', 'seed')}
    clusters = record_to_state(content.array_records['clusters'])
    return ids, clusters, str(meta['config-fingerprint'])


def encode_scores(site_id: int, round_idx: int,
                  scores: Optional[List[float]], stale: bool) -> RecordDict:
    """A site's answer to a score query (no scores: it has no features
    yet; ``stale``: of another sample count)."""
    meta = {'client-id': int(site_id), 'round': int(round_idx),
            'stale': bool(stale)}
    if scores is not None:
        meta['scores'] = [float(s) for s in scores]
    return RecordDict({'scores': ConfigRecord(meta)})


def decode_scores(content: RecordDict
                  ) -> Tuple[int, int, Optional[List[float]], bool]:
    """A score answer as ``(site, round, scores or None, stale)``."""
    meta = content.config_records['scores']
    scores = meta.get('scores')
    return (int(meta['client-id']), int(meta['round']),
            None if scores is None else [float(s) for s in scores],
            bool(meta['stale']))

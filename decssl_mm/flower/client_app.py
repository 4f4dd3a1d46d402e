"""The Flower ClientApp of a site (``decssl_mm.flower.client_app:app``).

Run config (``[tool.flwr.app.config]``): ``config`` (the shared mmengine
config, resolved at the site). Node config (``flower-supernode
--node-config``): ``data-root`` (required), ``site-id``, ``state-dir``
(:data:`~decssl_mm.flower.node_config.NODE_CONFIG_KEYS`).
"""
from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp

import decssl_mm  # noqa: F401 - registers the components
from .codec import (decode_score_query, decode_task, encode_result,
                    encode_scores)
from .node_config import parse_node_config
from .site import Site

app = ClientApp()


def site_of(context: Context) -> Site:
    """The site this ClientApp runs for (config and node config checked)."""
    site = parse_node_config(context.node_config, context.node_id)
    config = context.run_config.get('config')
    if not config:
        raise ValueError("The run config has no 'config' (the path of the "
                         'shared mmengine config).')
    return Site(str(config), site)


def answer_enrolment(msg: Message, context: Context) -> Message:
    """Tell the server the site's id and image count, after checking that
    the site runs the server's config."""
    site = site_of(context)
    site.check_fingerprint(
        str(msg.content.config_records['enrol']['config-fingerprint']))
    sid = site.site.site_id
    record = ConfigRecord({'site-id': -1 if sid is None else sid,
                           'num-samples': site.num_samples()})
    return Message(RecordDict({'site': record}), reply_to=msg)


def answer_task(msg: Message, context: Context) -> Message:
    """Train the received task on the site's images; reply with the
    exchanged keys of the result, its sample count and metrics."""
    site = site_of(context)
    task, fingerprint = decode_task(msg.content)
    check_site(site, fingerprint, task.client_id)
    result = site.fit(task)
    return Message(encode_result(result, task.exchanged_keys), reply_to=msg)


def answer_scores(msg: Message, context: Context) -> Message:
    """FeatARC's first message of a round: score the received cluster
    backbones on the site's images; reply with the scores."""
    site = site_of(context)
    ids, clusters, fingerprint = decode_score_query(msg.content)
    check_site(site, fingerprint, ids['client-id'])
    scores, stale = site.score(ids['round'], ids['seed'], ids['client-id'],
                               clusters)
    return Message(encode_scores(ids['client-id'], ids['round'], scores,
                                 stale), reply_to=msg)


def check_site(site: Site, fingerprint: str, client_id: int) -> None:
    """Refuse a message of another config or meant for another site."""
    site.check_fingerprint(fingerprint)
    sid = site.site.site_id
    if sid is not None and sid != client_id:
        raise ValueError(f'{site.site.node} is site {sid} but got the task '
                         f'of site {client_id}.')


app.query()(answer_enrolment)
app.query('score')(answer_scores)
app.train()(answer_task)

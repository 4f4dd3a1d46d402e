"""What a site says about itself: its node config, checked."""
import os.path as osp
from typing import Mapping, NamedTuple, Optional

#: Node-config keys a site may set (``flower-supernode --node-config``).
NODE_CONFIG_KEYS = ('data-root', 'site-id', 'state-dir')


class SiteConfig(NamedTuple):
    """A site's own settings.

    Args:
        node (str): The node's name in messages (``node <id>``).
        data_root (str): The directory of the site's images; replaces the
            ``data_root`` of the config's training dataset.
        site_id (int, optional): The client id of this site in the
            federation (its data order and augmentation seeds derive from
            it). None: the server numbers sites by node id.
        state_dir (str): Where the site keeps its local state between
            rounds (never sent).
    """

    node: str
    data_root: str
    site_id: Optional[int]
    state_dir: str


def parse_node_config(node_config: Mapping, node_id: int) -> SiteConfig:
    """Check a node config and read the site's settings from it.

    Args:
        node_config (Mapping): The SuperNode's ``--node-config``.
        node_id (int): The node's id (for error messages).

    Returns:
        SiteConfig: The site's settings.

    Raises:
        KeyError: An unknown key, naming the node and the key.
        ValueError: A missing ``data-root`` or a bad ``site-id``.
        FileNotFoundError: A data root that is not a directory, naming
            the node and the path.
    """
    node = f'node {node_id}'
    unknown = sorted(set(node_config) - set(NODE_CONFIG_KEYS))
    if unknown:
        raise KeyError(
            f'{node}: unknown node-config key(s) {unknown}; a site may set '
            f'only {list(NODE_CONFIG_KEYS)}.')
    data_root = node_config.get('data-root')
    if not data_root:
        raise ValueError(f"{node}: the node config has no 'data-root' (the "
                         "directory of the site's images).")
    data_root = osp.abspath(osp.expanduser(str(data_root)))
    if not osp.isdir(data_root):
        raise FileNotFoundError(
            f'{node}: data-root {data_root!r} does not exist or is not a '
            'directory.')
    site_id = node_config.get('site-id')
    if site_id is not None:
        if isinstance(site_id, bool) or int(site_id) != site_id or \
                int(site_id) < 0:
            raise ValueError(f'{node}: site-id must be an integer >= 0, got '
                             f'{site_id!r}.')
        site_id = int(site_id)
    state_dir = node_config.get('state-dir') or osp.join(
        data_root, '.decssl_site_state')
    return SiteConfig(node, data_root, site_id,
                      osp.abspath(osp.expanduser(str(state_dir))))

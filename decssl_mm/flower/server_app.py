"""The Flower ServerApp (``decssl_mm.flower.server_app:app``).

Run config (``[tool.flwr.app.config]``): ``config`` (the mmengine config),
``work-dir`` (checkpoints and logs; default ``work_dirs/<config name>``),
``resume`` (continue from the last checkpoint there; default true),
``round-timeout`` (seconds to wait for a round; default 3600, 0: no
limit, then a site that hangs while its SuperNode stays up stalls the run;
a dead SuperNode is answered for by the SuperLink once it holds it offline),
``min-results`` (fewest admitted results a round needs, sites left out
counted as missing; default 1),
``enrol-timeout`` (seconds to wait for the sites at the start).
"""
import os.path as osp

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp
from mmengine.config import Config
from mmengine.runner import Runner

import decssl_mm  # noqa: F401 - registers the components
from .federation_loop import FederationLoop
from .fingerprint import config_fingerprint
from .grid_transport import GridTransport

app = ServerApp()


def server_runner(run_config: dict, transport) -> Runner:
    """The server's Runner with the federation as its train loop.

    Args:
        run_config (dict): The run config (see the module docstring).
        transport: Carries tasks and results (a :class:`GridTransport`).
    """
    path = str(run_config['config'])
    cfg = Config.fromfile(path)
    fingerprint = config_fingerprint(cfg)
    name = osp.splitext(osp.basename(path))[0]
    cfg.work_dir = str(run_config.get('work-dir') or cfg.get('work_dir')
                       or osp.join('work_dirs', name))
    cfg.resume = bool(run_config.get('resume', True))
    cfg.load_from = None
    cfg.launcher = 'none'
    timeout = float(run_config.get('round-timeout', 3600)) or None
    runner = Runner.from_cfg(cfg)
    runner._train_loop = FederationLoop(
        runner, transport, cfg.train_cfg, fingerprint, timeout,
        int(run_config.get('min-results', 1)))
    return runner


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run the config's rounds across the connected sites."""
    rc = dict(context.run_config)
    transport = GridTransport(grid, float(rc.get('enrol-timeout', 600)))
    server_runner(rc, transport).train()

"""1 process vs 2 processes (torchrun, gloo on CPU) give the same model."""
import os
import os.path as osp

import torch
import torch.multiprocessing as mp

from _helpers.configs import tiny_federated_cfg
from _helpers.dist import free_port, train_one_and_two_processes


def test_one_vs_two_processes(fmnist_root, tmp_path):
    cfg = tiny_federated_cfg(
        'configs/decssl/mocov2_r18_fmnist_dir0.1.py', fmnist_root,
        str(tmp_path), rounds=2, num_clients=4, local_iters=2)
    cfg.randomness = dict(seed=0, deterministic=True)
    a, b, one, two = train_one_and_two_processes(cfg, tmp_path,
                                                 'epoch_2.pth')
    assert a['meta']['epoch'] == b['meta']['epoch'] == 2
    changed = 0
    for k, v in a['state_dict'].items():
        w = b['state_dict'][k]
        if v.is_floating_point():
            assert torch.allclose(v, w, atol=1e-4, rtol=1e-4), k
        else:
            assert torch.equal(v, w), k
    # the model did train
    init = torch.load(osp.join(one, 'epoch_1.pth'), weights_only=True)
    for k, v in a['state_dict'].items():
        if v.is_floating_point() and not torch.equal(
                v, init['state_dict'][k]):
            changed += 1
    assert changed > 10
    # every client's state was written by one of the two ranks, in each
    # round (both checkpoints are kept, so both rounds' versions stay)
    names = sorted(n for n in os.listdir(osp.join(two, 'client_states'))
                   if n.endswith('.pth'))  # not the checksum sidecars
    assert names == [f'client_{k:06d}.r{r:06d}.pth'
                     for k in range(4) for r in range(2)]


def _isolated_moco(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist
    dist.init_process_group('gloo', rank=rank, world_size=2,
                            init_method=f'tcp://127.0.0.1:{port}')
    import decssl_mm  # noqa: F401
    from mmpretrain.registry import MODELS

    from decssl_mm.federated import client_local_ops
    torch.manual_seed(0)
    model = MODELS.build(
        dict(type='MoCo', queue_len=12, feat_dim=8, momentum=0.01,
             backbone=dict(type='ResNet', depth=18, base_channels=4,
                           stem_channels=4),
             neck=dict(type='MoCoV2Neck', in_channels=32, hid_channels=16,
                       out_channels=8, with_avg_pool=True),
             head=dict(type='ContrastiveHead',
                       loss=dict(type='CrossEntropyLoss'), temperature=0.2)))
    # ranks train different clients with different batch sizes: any
    # cross-rank gather would fail or hang
    bs = 2 if rank == 0 else 3
    x = [torch.randn(bs, 3, 32, 32), torch.randn(bs, 3, 32, 32)]
    from mmpretrain.structures import DataSample
    with client_local_ops(model):
        model.loss(x, [DataSample() for _ in range(bs)])
    torch.save({'ptr': int(model.queue_ptr.item())},
               osp.join(out, f'rank{rank}.pt'))
    dist.destroy_process_group()


def test_client_ops_stay_on_their_rank(tmp_path):
    port = free_port()
    ctx = mp.get_context('spawn')
    procs = [ctx.Process(target=_isolated_moco,
                         args=(r, port, str(tmp_path))) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
        if p.is_alive():
            p.kill()
    assert all(p.exitcode == 0 for p in procs)
    # each rank enqueued only its own keys
    assert torch.load(str(tmp_path / 'rank0.pt'))['ptr'] == 2
    assert torch.load(str(tmp_path / 'rank1.pt'))['ptr'] == 3

# SimCLR over 10 Dirichlet(0.1) clients, aggregated with the coordinate-wise
# median (robust to a minority of malicious clients), failing clients retried
# once. See docs/reliability.md.
_base_ = ['../decssl/simclr_r18_fmnist_dir0.1.py']

train_cfg = dict(
    aggregator=dict(
        _delete_=True,
        type='CoordinateMedian',
        buffer='memory',  # or 'disk' with buffer_dir=... for big models
        chunk_size=2**18),
    client_retries=1)

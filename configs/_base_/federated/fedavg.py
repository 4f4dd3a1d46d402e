# FedAvg rounds: one mmengine epoch == one communication round.
rounds = 20
train_cfg = dict(
    type='FederatedTrainLoop',
    rounds=rounds,
    local_epochs=1,
    participation=None,  # all clients every round; e.g. 0.25 to sample
    sampler=dict(type='UniformClientSampler', weighted=False),
    aggregator=dict(type='FedAvg', weighting='samples'),
    client_state=dict(type='DiskClientStateStore'),
    optimizer_policy='reset',
)
# Ranks train different clients: no gradient synchronisation (no DDP). The
# scope prefix is needed: mmengine looks the wrapper up in its root registry.
model_wrapper_cfg = dict(type='decssl_mm.FederatedModelWrapper')

# The learning rate of a round follows the round index (by_epoch=True).
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=rounds, by_epoch=True, begin=0,
         end=rounds)
]

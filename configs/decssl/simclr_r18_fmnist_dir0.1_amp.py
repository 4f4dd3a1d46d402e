# simclr_r18_fmnist_dir0.1 for a GPU: bf16 mixed precision (mmengine's
# AmpOptimWrapper), channels-last model and inputs, pinned host memory and
# non-blocking host-to-device copies. Weights, the server's copies and the
# aggregation stay float32 (float64 sums); only the local steps' forward
# and backward run in bf16. AmpOptimWrapper needs a GPU (mmengine refuses
# it on a CPU-only machine).
_base_ = ['./simclr_r18_fmnist_dir0.1.py']

optim_wrapper = dict(type='AmpOptimWrapper', dtype='bfloat16')
custom_hooks = [dict(type='ChannelsLastHook')]
train_dataloader = dict(pin_memory=True)
data_preprocessor = dict(non_blocking=True)

# SCAFFOLD on the Dec-SSL simclr twin (simclr_r18_fmnist_dir0.1.py): the same
# model, data, partition and schedule; each local step is corrected by the
# control variates (c - c_i), exchanged with the server as task/result extras.
_base_ = ['./simclr_r18_fmnist_dir0.1.py']

train_cfg = dict(
    trainer=dict(type='ScaffoldTrainer'),
    server=dict(type='ScaffoldServer'))

# Labelled Fashion-MNIST loaders for weighted-kNN evaluation (feature bank =
# train split, queries = test split; no augmentation). Used by
# tools/analysis/knn_eval.py and by KNNEvalHook. Only top-level keys with a
# knn_ prefix, so this file can be a base next to a pretraining config.
knn_pipeline = [
    dict(type='GrayToRGB'),
    dict(type='Resize', scale=(32, 32)),
    dict(type='PackInputs'),
]
knn_train_dataloader = dict(
    batch_size=512,
    num_workers=4,
    dataset=dict(
        type='FashionMNISTGz',
        data_root='/usr/share/datasets/fashion-mnist',
        split='train',
        pipeline=knn_pipeline))
knn_val_dataloader = dict(
    batch_size=512,
    num_workers=4,
    dataset=dict(
        type='FashionMNISTGz',
        data_root='/usr/share/datasets/fashion-mnist',
        split='test',
        pipeline=knn_pipeline))

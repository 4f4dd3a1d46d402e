# Weighted kNN (k=200, T=0.1) of a Dec-SSL MoCo v2 ResNet-18 on
# Fashion-MNIST: the pretraining model and normalisation, labelled loaders.
#   python tools/analysis/knn_eval.py \
#       configs/benchmarks/knn/mocov2_r18_knn_fashion-mnist.py CHECKPOINT
_base_ = [
    '../../decssl/mocov2_r18_fmnist_dir0.1.py',
    '../_base_/datasets/fashion_mnist_knn.py',
]

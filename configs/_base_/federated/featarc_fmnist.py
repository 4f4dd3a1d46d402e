# The un-augmented "eval view" of a Fashion-MNIST sample (grey -> 3 channels,
# 28 -> 32 px, no random transform), as used by FeatARC to compare cluster
# and client features. Only a `featarc_` key, so it can sit next to a
# pretraining config in `_base_`.
featarc_eval_pipeline = [
    dict(type='GrayToRGB'),
    dict(type='Resize', scale=(32, 32)),
    dict(type='PackInputs'),
]

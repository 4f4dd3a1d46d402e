# MAE with a tiny ViT for 32 px images (patch 4: 8 x 8 = 64 patches), sized
# for CPU runs: encoder 96-d, 4 layers, 3 heads; decoder 64-d, 2 layers,
# 4 heads. 75 % of the patches are masked; the loss is the L2 error of the
# normalised pixels of the masked patches (as in mmpretrain's MAE configs).
mae_img_size = 32
mae_patch_size = 4
mae_embed_dims = 96
model = dict(
    type='MAE',
    backbone=dict(
        type='MAEViT',
        arch=dict(
            embed_dims=mae_embed_dims,
            num_layers=4,
            num_heads=3,
            feedforward_channels=4 * mae_embed_dims),
        img_size=mae_img_size,
        patch_size=mae_patch_size,
        mask_ratio=0.75),
    neck=dict(
        type='MAEPretrainDecoder',
        num_patches=(mae_img_size // mae_patch_size)**2,
        patch_size=mae_patch_size,
        in_chans=3,
        embed_dim=mae_embed_dims,
        decoder_embed_dim=64,
        decoder_depth=2,
        decoder_num_heads=4,
        mlp_ratio=4.),
    head=dict(
        type='MAEPretrainHead',
        norm_pix=True,
        patch_size=mae_patch_size,
        loss=dict(type='PixelReconstructionLoss', criterion='L2')),
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
    ])

# Linear probe on a frozen PE backbone (dense_protocols.md 2.4): the last block's patch tokens,
# BatchNorm + 1x1 conv (PELinearHead), logits upsampled to the image. No neck, no auxiliary head.
norm_cfg = dict(type="SyncBN", requires_grad=True)
data_preprocessor = dict(
    type="SegDataPreProcessor",
    mean=[127.5, 127.5, 127.5],
    std=[127.5, 127.5, 127.5],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
)
model = dict(
    type="EncoderDecoder",
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type="PEViTBackbone",
        variant="PE-Spatial-B16-512",
        out_indices=(-1,),
        frozen=True,
        weights=None,  # a frozen random backbone is meaningless: set the PE checkpoint path
    ),
    decode_head=dict(
        type="PELinearHead",
        in_channels=[768],
        in_index=[0],
        channels=768,
        input_transform="resize_concat",
        dropout_ratio=0.0,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0),
    ),
    train_cfg=dict(),
    test_cfg=dict(mode="slide", crop_size=(512, 512), stride=(341, 341)),
)

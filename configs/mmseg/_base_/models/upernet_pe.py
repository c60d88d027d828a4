# UPerNet on a PE backbone: four blocks of PEViT, a MultiLevelNeck (x4, x2, x1, x0.5), UPerHead
# and an auxiliary FCN head. Images are normalised as PE expects: mean = std = 127.5 (RGB).
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
        out_indices=(2, 5, 8, 11),
        drop_path=0.1,
        weights=None,  # e.g. "/path/to/PE-Spatial-B16-512.pt" (official, timm or HF layout)
    ),
    neck=dict(type="MultiLevelNeck", in_channels=[768] * 4, out_channels=768,
              scales=[4, 2, 1, 0.5]),
    decode_head=dict(
        type="UPerHead",
        in_channels=[768] * 4,
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=512,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0),
    ),
    auxiliary_head=dict(
        type="FCNHead",
        in_channels=768,
        in_index=3,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=0.4),
    ),
    train_cfg=dict(),
    test_cfg=dict(mode="slide", crop_size=(512, 512), stride=(341, 341)),
)

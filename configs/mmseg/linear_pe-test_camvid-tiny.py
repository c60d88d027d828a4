# CPU smoke configuration of the linear probe: frozen PE-Test (random weights: a pipeline check,
# not a probe result), PELinearHead (BatchNorm + 1x1 conv), CamVid as in the UPerNet smoke config.
_base_ = ["upernet_pe-test_camvid-tiny.py"]
model = dict(
    _delete_=True,
    type="EncoderDecoder",
    data_preprocessor=dict(type="SegDataPreProcessor", mean=[127.5] * 3, std=[127.5] * 3,
                           bgr_to_rgb=True, pad_val=0, seg_pad_val=11, size=(128, 128)),
    backbone=dict(type="PEViTBackbone", variant="PE-Test", out_indices=(-1,), frozen=True),
    decode_head=dict(
        type="PELinearHead",
        in_channels=[64],
        in_index=[0],
        channels=64,
        dropout_ratio=0.0,
        num_classes=11,
        ignore_index=11,
        norm_cfg=dict(type="BN", requires_grad=True),
        align_corners=False,
        loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0),
    ),
    train_cfg=dict(),
    test_cfg=dict(mode="whole"),
)
optim_wrapper = dict(optimizer=dict(lr=1e-3, weight_decay=1e-4))

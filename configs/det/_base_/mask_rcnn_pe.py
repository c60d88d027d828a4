# Mask R-CNN on a PE simple feature pyramid with ViTDet's choices: 256-channel LN pyramid
# p2..p6, 2-conv RPN head, 4conv1fc box head and 4-conv mask head with LN. Padding (1024 x 1024
# square, or a multiple of 64) is stated once, in the dataset config's detection_collate.
model = dict(
    type="MaskRCNN",
    backbone=dict(name="PE-Spatial-B16-512", weights=None),
    pyramid=dict(type="SimpleFeaturePyramid", out_channels=256, scale_factors=(4.0, 2.0, 1.0, 0.5),
                 norm="LN", top_block=True),
    num_classes=80,
    anchor_sizes=((32,), (64,), (128,), (256,), (512,)),
    aspect_ratios=(0.5, 1.0, 2.0),
    rpn=dict(conv_depth=2, pre_nms_top_n=dict(training=2000, testing=1000),
             post_nms_top_n=dict(training=1000, testing=1000), nms_thresh=0.7),
    roi=dict(batch_size_per_image=512, positive_fraction=0.25, score_thresh=0.05, nms_thresh=0.5,
             detections_per_img=100),
    box_head=dict(conv_dims=(256, 256, 256, 256), fc_dims=(1024,), norm="LN"),
    mask_head=dict(conv_dims=(256, 256, 256, 256), norm="LN"),
)

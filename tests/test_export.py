"""Export (ONNX, torch.export, int8) and the runtime: PE-Test and T16 at small sizes, the
windowed backbone, segmentation and depth end to end, the detector's backbone + pyramid, the
CLI's bad inputs (exit 2, nothing written) and the benchmark's runtimes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from pe_dense import create_backbone  # noqa: E402
from pe_dense.cli import main  # noqa: E402
from pe_dense.export import export_model  # noqa: E402
from pe_dense.export.api import compare_outputs  # noqa: E402
from pe_dense.runtime import SessionBackbone, open_session, read_spec  # noqa: E402
from pe_dense.tasks.description import bind_task  # noqa: E402

TOL = 1e-4


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _agree(session, fn, x: torch.Tensor, tol: float = TOL) -> float:
    """Relative error of the session's outputs vs eager ``fn(x)``; returns the cosine."""
    with torch.no_grad():
        ref = fn(x)
    ref = list(ref) if isinstance(ref, tuple | list) else [ref]
    check = compare_outputs(ref, session(x), "x")
    assert check.rel < tol, check.line()
    return check.cosine


@pytest.fixture(scope="module")
def pe_test():
    torch.manual_seed(0)
    return create_backbone("PE-Test").eval()


def test_backbone_onnx_dynamic_two_other_sizes_and_int8(pe_test, tmp_path):
    out = tmp_path / "pe_test.onnx"
    result = export_model(pe_test, out, "onnx", (64, 96), dynamic=True, int8=True,
                          source="PE-Test", random_weights=True)
    assert out.is_file() and result.int8_path.is_file()
    assert [c.name for c in result.checks] == ["random", "image", "random-other"]
    assert all(c.rel < TOL for c in result.checks)
    spec = read_spec(out)
    assert spec["kind"] == "features" and spec["dynamic"] and spec["random_weights"]
    session = open_session(out)
    for shape in [(1, 3, 48, 128), (3, 3, 112, 32)]:  # grids 3x8 and 7x2, batches 1 and 3
        _agree(session, pe_test.forward_features, _rand(*shape))
    int8 = open_session(result.int8_path)
    assert read_spec(result.int8_path)["int8"] is True
    with torch.no_grad():
        ref = pe_test.forward_features(_rand(2, 3, 80, 80))
    cosine = compare_outputs([ref], int8(_rand(2, 3, 80, 80)), "int8").cosine
    assert cosine >= 0.99
    assert min(c.cosine for c in result.int8_checks) >= 0.99


def test_static_export_rejects_other_sizes(pe_test, tmp_path):
    out = tmp_path / "static.onnx"
    export_model(pe_test, out, "onnx", (64, 64))
    session = open_session(out)
    _agree(session, pe_test.forward_features, _rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match="exported for 64x64.*--dynamic"):
        session(_rand(1, 3, 96, 64))


def test_backbone_torch_export_dynamic(pe_test, tmp_path):
    out = tmp_path / "pe_test.pt2"
    export_model(pe_test, out, "torch", (64, 64), dynamic=True, layers=[1, 3])
    session = open_session(out)
    assert session.runtime == "torch-export" and session.spec["layers"] == [1, 3]
    for shape in [(1, 3, 32, 80), (2, 3, 96, 48)]:
        _agree(session, lambda x: pe_test.forward_intermediates(x, [1, 3]), _rand(*shape))


def test_t16_intermediates_onnx_and_session_backbone(tmp_path):
    torch.manual_seed(0)
    vit = create_backbone("PE-Spatial-T16-512").eval()
    out = tmp_path / "t16.onnx"
    export_model(vit, out, "onnx", (64, 64), dynamic=True, layers=[2, -1])
    backbone = SessionBackbone(open_session(out))
    assert backbone.patch_size == 16 and backbone.embed_dim == 192
    for shape in [(1, 3, 96, 64), (2, 3, 48, 112)]:
        x = _rand(*shape)
        with torch.no_grad():
            ref = vit.forward_intermediates(x, [11])[0]
        got = backbone.forward_intermediates(x, [-1])[0]
        assert got.shape == ref.shape
        assert ((got - ref).abs().max() / ref.abs().max()).item() < TOL
    with pytest.raises(ValueError, match="re-export with --layers 5"):
        backbone.forward_intermediates(_rand(1, 3, 64, 64), [5])


def test_windowed_backbone_dynamic_with_padded_windows(tmp_path):
    torch.manual_seed(0)
    vit = create_backbone("PE-Test", window_size=2, global_blocks=(1, 3), posemb_mode="tile",
                          rope_mode="interpolate").eval()
    out = tmp_path / "windowed.onnx"
    export_model(vit, out, "onnx", (64, 64), dynamic=True)
    session = open_session(out)
    for shape in [(1, 3, 48, 80), (2, 3, 96, 32)]:  # odd grids: padded, masked windows
        _agree(session, vit.forward_features, _rand(*shape))


def _uint8(*shape: int) -> torch.Tensor:
    return torch.randint(0, 256, shape, dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(1))


def test_depth_end_to_end_dynamic(tmp_path):
    from pe_dense.tasks.depth.model import DepthEstimator

    torch.manual_seed(0)
    model = DepthEstimator(backbone={"name": "PE-Test"},
                           head={"type": "DPTHead", "features": 16,
                                 "out_channels": (8, 16, 32, 32)}).eval()
    out = tmp_path / "depth.onnx"
    result = export_model(model, out, "onnx", (64, 64), dynamic=True, int8=True)
    assert result.spec.kind == "depth" and min(c.cosine for c in result.int8_checks) > 0.99
    session = open_session(out)
    _agree(session, lambda v: model.decode(model.encode(v), tuple(v.shape[-2:])),
           _rand(2, 3, 96, 48))
    images = [np.asarray(_uint8(50, 70, 3)), np.asarray(_uint8(64, 32, 3))]
    with torch.no_grad():
        eager = model.predict_images(images)
    bound = bind_task(model, session).predict_images(images)  # pre/post-processing in torch
    for a, b in zip(eager, bound, strict=True):
        assert a.shape == b.shape and np.abs(a - b).max() / np.abs(a).max() < TOL


def test_segmentation_upernet_end_to_end(tmp_path):
    from pe_dense.tasks.segmentation.model import Segmentor

    torch.manual_seed(0)
    model = Segmentor(backbone={"name": "PE-Test"}, num_classes=5,
                      neck={"type": "MultiLayerPyramid", "indices": (0, 1, 2, 3),
                            "out_channels": 16},
                      head={"type": "UPerHead", "channels": 8}).eval()
    with pytest.raises(ValueError, match="head.ppm.*cannot be dynamic in ONNX"):
        export_model(model, tmp_path / "dyn.onnx", "onnx", (64, 64), dynamic=True)
    assert list(tmp_path.iterdir()) == []
    out = tmp_path / "seg.onnx"
    export_model(model, out, "onnx", (64, 96), int8=True)
    images = torch.stack([_uint8(3, 64, 96), _uint8(3, 64, 96)])
    with torch.no_grad():
        eager = [r["pred"] for r in model.predict(images)]
    bound = [r["pred"] for r in bind_task(model, open_session(out)).predict(images)]
    for a, b in zip(eager, bound, strict=True):
        assert a.shape == (64, 96) and (a == b).float().mean() > 0.99


def test_detector_backbone_and_pyramid(tmp_path):
    from pe_dense.tasks.detection.model import MaskRCNN

    torch.manual_seed(0)
    model = MaskRCNN(backbone={"name": "PE-Test"}, num_classes=2,
                     pyramid={"out_channels": 16},
                     rpn={"pre_nms_top_n": {"training": 100, "testing": 100},
                          "post_nms_top_n": {"training": 50, "testing": 50}},
                     box_head={"conv_dims": (16,), "fc_dims": (32,)},
                     mask_head={"conv_dims": (16,)}, roi={"batch_size_per_image": 16}).eval()
    out = tmp_path / "det.onnx"
    result = export_model(model, out, "onnx", (64, 64), dynamic=True)  # windowless PE-Test
    assert result.spec.outputs == ["p2", "p3", "p4", "p5", "p6"]
    session = open_session(out)
    x = _rand(1, 3, 128, 64)
    with torch.no_grad():
        ref = model.encode(x)
    bound = bind_task(model, session)
    got = bound.encode(x)
    for name in ref:
        assert ((got[name] - ref[name]).abs().max() / ref[name].abs().max()) < TOL
    with torch.no_grad():
        detections = bound.decode(got, [(128, 64)])
    assert set(detections[0]) >= {"boxes", "scores", "labels"}


def test_bind_task_refuses_another_task(pe_test, tmp_path):
    from pe_dense.tasks.depth.model import DepthEstimator

    out = tmp_path / "b.onnx"
    export_model(pe_test, out, "onnx", (32, 32))
    model = DepthEstimator(backbone={"name": "PE-Test"}, head={"type": "LinearBinsHead"})
    with pytest.raises(ValueError, match="'features' graph but the model is a 'depth'"):
        bind_task(model, open_session(out))


@pytest.mark.parametrize("argv,message", [
    (["--format", "tf"], "unknown --format 'tf'"),
    (["--resolution", "60"], "not a multiple of 16.*nearest valid 64,64"),
    (["--opset", "16"], "opset 16 does not support LayerNormalization"),
    (["--format", "torch", "--int8"], "--int8 quantises ONNX"),
    (["--layers", "7"], "layer 7 is out of range"),
])
def test_cli_bad_input_exit_2_nothing_written(argv, message, tmp_path, capsys):
    out = tmp_path / ("m.pt2" if "torch" in argv else "m.onnx")
    code = main(["export", "PE-Test", "--out", str(out), "--resolution", "32", *argv])
    assert code == 2
    assert pytest.importorskip("re").search(message, capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []


def test_cli_checkpoint_that_does_not_fit(tmp_path, capsys):
    pytest.importorskip("mmengine")
    bad = tmp_path / "other.pth"
    torch.save({"state_dict": {"linear.weight": torch.zeros(1, 3)}}, bad)
    out = tmp_path / "det.onnx"
    code = main(["export", "configs/det/mask_rcnn_pe_test_shapes_tiny.py", "--checkpoint",
                 str(bad), "--out", str(out), "--resolution", "64"])
    assert code == 2
    assert "does not fit" in capsys.readouterr().err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["other.pth"]


def test_cli_export_and_features_on_onnxruntime(tmp_path, capsys):
    out = tmp_path / "t.onnx"
    assert main(["export", "PE-Test", "--out", str(out), "--resolution", "64", "--dynamic",
                 "--layers=1,-1", "--int8"]) == 0
    text = capsys.readouterr().out
    assert "fp32 vs eager PyTorch" in text and "random-other" in text and "int8 ->" in text
    assert main(["features", "--runtime", "onnxruntime", "--onnx", str(out), "--resolution",
                 "64", "--out", str(tmp_path / "feat")]) == 0
    assert (tmp_path / "feat" / "sample_pca.png").is_file()
    assert main(["features", "--onnx", str(out)]) == 2  # --onnx without --runtime onnxruntime


def test_benchmark_runtimes_side_by_side(tmp_path):
    from pe_dense.benchmark.core import Case
    from pe_dense.benchmark.report import rows_of
    from pe_dense.benchmark.timing import run_case
    from pe_dense.export.bench import BenchmarkExporter

    results = run_case(Case("PE-Test", 64, batch_size=2), warmup=1, repeats=1, memory=True,
                       runtimes=["torch", "onnxruntime", "onnxruntime-int8"],
                       exporter=BenchmarkExporter(tmp_path))
    assert [r.impl for r in results] == ["pe_dense", "onnxruntime", "onnxruntime-int8"]
    assert all(r.status == "ok" and r.images_per_s > 0 for r in results), results
    assert results[1].extra["rel_diff"] < TOL and results[2].extra["cosine"] >= 0.99
    assert results[1].peak_mem_mb >= 0
    rows = rows_of(results)
    assert rows[1]["x_eager"] == pytest.approx(results[1].images_per_s / results[0].images_per_s)

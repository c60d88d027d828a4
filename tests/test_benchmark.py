"""The benchmark library and command on tiny cases (timing values are not asserted)."""

from __future__ import annotations

import json
import math

import pytest

from pe_dense.benchmark.core import Case
from pe_dense.benchmark.timing import run_case
from pe_dense.cli import main


def test_case_validation():
    with pytest.raises(ValueError, match="dtype"):
        Case("PE-Spatial-T16-512", 64, dtype="fp8")
    with pytest.raises(ValueError, match="unknown PE variant"):
        Case("PE-Nope", 64)
    with pytest.raises(ValueError, match="attention"):
        Case("PE-Test", 64, attention="local")
    with pytest.raises(ValueError, match="not a multiple of PE-Test's patch size 16; nearest "
                                         "valid: 96 or 112"):
        Case("PE-Test", 100)


@pytest.mark.parametrize("mode,memory", [("inference", True), ("train", False)])
def test_run_case_measures(mode, memory):
    (r,) = run_case(Case("PE-Test", 64, batch_size=2, attention="windowed", mode=mode),
                    warmup=1, repeats=2, memory=memory)
    assert r.status == "ok", r.status
    assert r.latency_ms > 0 and r.latency_p90_ms >= r.latency_ms
    assert r.images_per_s == pytest.approx(2000 / r.latency_ms)
    assert r.tokens_per_s == pytest.approx(r.images_per_s * 16)
    assert (r.peak_mem_mb >= 0) if memory else math.isnan(r.peak_mem_mb)
    assert r.params_m == pytest.approx(0.2, abs=0.05)
    assert r.gflops > 0


def test_flops_scale_with_mode_and_batch():
    inf = run_case(Case("PE-Test", 64), warmup=0, repeats=1, memory=False)[0]
    train = run_case(Case("PE-Test", 64, batch_size=2, mode="train"), warmup=0, repeats=1,
                     memory=False)[0]
    assert train.gflops == pytest.approx(inf.gflops * 2 * 3, rel=0.1)  # backward ~ 2x forward


def test_oom_and_errors_are_reported_not_raised():
    (r,) = run_case(Case("PE-Test", 64, device="cuda:99"), warmup=0, repeats=1, memory=False)
    assert r.status.startswith(("error", "oom"))


def test_cli_compare_timm(tmp_path, capsys):
    pytest.importorskip("timm")
    out = tmp_path / "r.json"
    code = main(["benchmark", "--model", "PE-Spatial-T16-512", "--resolution", "64,96",
                 "--repeats", "1", "--warmup", "0", "--compare", "timm", "--no-memory",
                 "--json", str(out),
                 "--csv", str(tmp_path / "r.csv"), "--plot", str(tmp_path / "plots")])
    assert code == 0
    rows = json.loads(out.read_text())
    assert [r["impl"] for r in rows] == ["pe_dense", "timm"] * 2
    assert all(r["max_abs_diff"] < 1e-5 for r in rows if r["impl"] == "timm")
    assert "ours/timm: speed x" in capsys.readouterr().out
    assert (tmp_path / "plots" / "images_per_s.png").stat().st_size > 1000
    assert (tmp_path / "plots" / "peak_mem_mb.png").exists()
    assert (tmp_path / "r.csv").read_text().startswith("model,")


def test_markdown_table():
    from pe_dense.benchmark.report import format_markdown

    rows = [{"impl": "pe_dense", "model": "PE-Test", "resolution": 64, "latency_ms": 12.345,
             "images_per_s": 0.5, "peak_mem_mb": float("nan"), "status": "ok"},
            {"impl": "timm", "model": "PE-Test", "resolution": 64, "speedup_vs_timm": 1.234,
             "max_abs_diff": 0.0, "status": "ok"}]
    lines = format_markdown(rows).splitlines()
    assert lines[0].startswith("| impl | model | res |") and len(lines) == 4
    assert "| 12.3 |" in lines[2] and "| 0.5 |" in lines[2] and "| - |" in lines[2]
    assert "x1.23" in lines[3] and "0.0e+00" in lines[3]


def test_flops_count_attention_on_cpu():
    """Attention FLOPs are counted (torch has no formula for the CPU kernel by itself)."""
    from pe_dense.benchmark.core import build_backbone, make_input
    from pe_dense.benchmark.flops import count_gflops

    case = Case("PE-Test", 256)  # 16x16 patches + cls = 257 tokens, width 64, MLP 128, 4 blocks
    tokens, width, mlp = 257, 64, 128
    patch_embed = 256 * 2 * (3 * 16 * 16) * width
    linear = 4 * tokens * 2 * (4 * width * width + 2 * width * mlp)  # qkv, out, fc1, fc2
    attention = 4 * 2 * (2 * tokens * tokens * width)  # q @ k^T and p @ v, all heads
    expected = (patch_embed + linear + attention) / 1e9
    assert count_gflops(case, build_backbone(case), make_input(case, 16)) == pytest.approx(expected)


def test_strategy_memory_ddp_vs_fsdp(tmp_path):
    """Two gloo processes: FSDP ranks hold complementary shards of what each DDP rank holds."""
    from pe_dense.benchmark.strategies import measure_strategy

    case = Case("PE-Spatial-T16-512", 64, mode="train")
    ddp = measure_strategy(case, "ddp", nproc=2, grad_checkpointing=True)
    fsdp = measure_strategy(case, "fsdp", nproc=2, grad_checkpointing=True)
    assert [r["rank"] for r in ddp] == [r["rank"] for r in fsdp] == [0, 1]
    for key in ("params", "grads", "optimizer"):
        assert ddp[0][key] == ddp[1][key] > 0  # replicas
        assert sum(r[key] for r in fsdp) == pytest.approx(ddp[0][key], rel=1e-6)  # 1/N each
        assert max(r[key] for r in fsdp) < 0.6 * ddp[0][key]
    assert all(r["step_peak"] > 0 and r["step_s"] > 0 for r in ddp + fsdp)
    assert main(["benchmark", "--strategy", "ddp", "--resolution", "64"]) != 0  # needs train


TINY_TIMM = {"depth": 2, "embed_dim": 64, "num_heads": 2}


def test_case_other_encoders():
    """timm encoders go through the contract: their own patch size, no windowed attention,
    no vit_pe twin."""
    pytest.importorskip("timm")
    from pe_dense.benchmark.core import encoder_info, timm_model

    name = "timm/vit_small_patch14_dinov2"
    info = encoder_info(name, TINY_TIMM)
    assert (info.patch_size, info.num_layers, info.supports_windowed) == (14, 2, False)
    assert info.input_mean == pytest.approx((0.485, 0.456, 0.406))
    with pytest.raises(ValueError, match="patch size 14; nearest valid: 56 or 70"):
        Case(name, 64, overrides=TINY_TIMM)
    with pytest.raises(ValueError, match="has no ViTDet windowed attention"):
        Case(name, 56, attention="windowed", overrides=TINY_TIMM)
    with pytest.raises(ValueError, match="did you mean"):
        Case("timm/vit_small_patch16_dinov", 64)
    with pytest.raises(ValueError, match="vit_pe twin of a PE variant"):
        timm_model(Case(name, 56, overrides=TINY_TIMM))


@pytest.mark.parametrize("mode,memory", [
    ("inference", False), ("train", False),
    pytest.param("inference", True, marks=pytest.mark.slow)])  # two worker processes
def test_run_case_tiny_timm(mode, memory):
    """A tiny random DINOv3 (RoPE) encoder: timed, FLOPs and params counted, memory measured in
    the worker subprocess (the overrides travel with the case)."""
    pytest.importorskip("timm")
    from pe_dense.benchmark.report import format_table, rows_of

    case = Case("timm/vit_small_patch16_dinov3", 64, batch_size=2, mode=mode,
                overrides=TINY_TIMM)
    (r,) = run_case(case, warmup=1, repeats=2, memory=memory)
    assert r.status == "ok", r.status
    assert r.latency_ms > 0 and r.tokens_per_s == pytest.approx(r.images_per_s * 16)
    # patch embedding 49,216 + 2 blocks of 50,112 (qkv, proj, MLP x4, norms, layer scale)
    # + cls and 4 register tokens + final norm
    assert r.params_m == pytest.approx(0.1497, abs=0.001)
    assert r.gflops > 0
    assert (r.peak_mem_mb >= 0) if memory else math.isnan(r.peak_mem_mb)
    (row,) = rows_of([r])
    assert row["overrides"] == "depth=2 embed_dim=64 num_heads=2"
    assert "timm/vit_small_patch16_dinov3" in format_table([row])


def test_make_input_uses_the_backbone_normalisation():
    pytest.importorskip("timm")
    from pe_dense.benchmark.core import encoder_info, make_input

    case = Case("timm/vit_small_patch16_dinov3", 32, overrides=TINY_TIMM)
    x = make_input(case, encoder_info(case.model, case.overrides))
    assert x.shape == (1, 3, 32, 32)
    assert x.min() < -1.5 and x.max() > 2.0  # ImageNet statistics, not PE's [-1, 1]
    pe = make_input(Case("PE-Test", 32), encoder_info("PE-Test"))
    assert pe.min() >= -1 and pe.max() <= 1


def test_cli_several_encoders_one_table(tmp_path, capsys):
    """PE and timm encoders side by side from one run; --compare timm twins the PE one only."""
    pytest.importorskip("timm")
    out = tmp_path / "r.json"
    code = main(["benchmark", "--model", "PE-Test,timm/vit_small_patch16_dinov3",
                 "--resolution", "32", "--repeats", "1", "--warmup", "0", "--no-memory",
                 "--compare", "timm", "--json", str(out), "--markdown", str(tmp_path / "r.md")])
    assert code == 0
    rows = json.loads(out.read_text())
    assert [(r["impl"], r["model"]) for r in rows] == [
        ("pe_dense", "PE-Test"), ("pe_dense", "timm/vit_small_patch16_dinov3")]
    assert rows[1]["params_m"] == pytest.approx(21.6, abs=0.5)
    table = capsys.readouterr().out
    assert "timm/vit_small_patch16_dinov3" in table
    assert "timm/vit_small_patch16_dinov3" in (tmp_path / "r.md").read_text()
    assert main(["benchmark", "--model", "timm/vit_small_patch16_dinov3", "--resolution", "32",
                 "--attention", "windowed"]) == 2  # a clear error before anything runs
    assert "no ViTDet windowed attention" in capsys.readouterr().err


@pytest.mark.slow  # ONNX export and session: about 11 s
def test_onnx_runtime_for_a_timm_encoder(tmp_path):
    """The exported-runtime path takes timm names too (the file name has no '/')."""
    pytest.importorskip("timm")
    pytest.importorskip("onnxruntime")
    from pe_dense.export.bench import BenchmarkExporter

    case = Case("timm/vit_small_patch16_dinov3", 32, overrides=TINY_TIMM)
    results = run_case(case, warmup=0, repeats=1, memory=False,
                       runtimes=["torch", "onnxruntime"], exporter=BenchmarkExporter(tmp_path))
    assert [(r.impl, r.status) for r in results] == [("pe_dense", "ok"), ("onnxruntime", "ok")]
    assert results[1].max_abs_diff < 1e-4
    assert [p.name.startswith("timm_vit_small") for p in tmp_path.glob("*.onnx")] == [True]

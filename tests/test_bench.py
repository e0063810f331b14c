"""The benchmark's structure on tiny shapes (no timing assertions: speed is reported, never tested)."""

import json

import numpy as np
import pytest

from convbook import bench


@pytest.fixture(scope="module")
def quick_result():
    return bench.run(("q1", "q2"), repeat=1, quick=True)


def test_quick_run_structure(quick_result):
    r = quick_result
    assert r["dtype"] == "float32"
    assert set(r["shapes"]) == {"q1", "q2"}
    assert r["baseline"] in ("torch", "fastest convbook method")
    for name, s in r["shapes"].items():
        shape = bench.QUICK_SHAPES[name]
        assert s["shape"] == list(shape)
        assert s["peak_gflops"] > 0
        methods = s["methods"]
        assert {"reference", "tutorial", "strided"} <= set(methods)
        assert ("winograd" in methods) == (shape.k == 3 and shape.stride == 1)
        for m, row in methods.items():
            assert row["forward_s"] > 0 and row["train_s"] > 0
            assert np.isclose(row["forward_gflops"], shape.forward_flops / row["forward_s"] / 1e9)
            assert np.isclose(row["forward_peak_fraction"], row["forward_gflops"] / s["peak_gflops"])
            # every method computed the same convolution as the baseline (float32)
            assert row["max_rel_diff"] < 1e-4, (name, m)
        assert s["best_forward"] in methods and s["best_forward"] not in ("torch", "reference")
        base = "torch" if r["baseline"] == "torch" else None
        if base:
            assert methods["torch"]["forward_ratio"] == pytest.approx(1.0)
        else:
            assert min(v["forward_ratio"] for k, v in methods.items() if k != "reference") == pytest.approx(1.0)


def test_json_and_table(quick_result, tmp_path):
    text = bench.format_table(quick_result)
    assert "strided" in text and "q1" in text and "GEMM peak" in text
    json.loads(json.dumps(quick_result))  # JSON-ready


def test_blas_info_lists_threads():
    info = bench.blas_info()
    for lib in info:
        assert lib["threads"] >= 1


def test_cli_quick_writes_json(tmp_path, capsys):
    path = tmp_path / "out.json"
    bench.main(["--quick", "--shapes", "q2", "--repeat", "1", "--json", str(path)])
    out = capsys.readouterr().out
    assert "q2" in out
    data = json.loads(path.read_text())
    assert list(data["shapes"]) == ["q2"]


def test_env_warning(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    assert any("OPENBLAS_CORETYPE=Haswell" in w for w in bench._env_warnings())
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    monkeypatch.delenv("OPENBLAS_L2_SIZE", raising=False)
    assert bench._env_warnings() == []


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown shapes"):
        bench.run(("zz",), quick=True)
    with pytest.raises(ValueError, match="repeat"):
        bench.run(("q1",), repeat=0, quick=True)
    with pytest.raises(SystemExit):
        bench.main(["--quick", "--shapes", "nope"])


def test_shapes_match_the_issue():
    assert bench.SHAPES["a"] == (32, 64, 64, 32, 3, 1, 1)
    assert bench.SHAPES["c"].out_hw == 16 // 2
    assert bench.SHAPES["e"].out_hw == 24
    assert bench.SHAPES["d"].forward_flops == 2 * 8 * 128 * 28 * 28 * 128 * 9


def test_plots_and_memory_table_read_the_result(quick_result):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = quick_result
    fig = bench.plot_result(r, title="quick")
    bars = [p for ax in fig.axes for p in ax.patches]
    methods = {m for s in r["shapes"].values() for m in s["methods"] if m != "reference"}
    # one bar per (panel, method, shape), and the time panel's heights are the result's times in ms
    assert len(bars) == 3 * len(methods) * len(r["shapes"])
    heights = sorted(round(b.get_height(), 9) for b in fig.axes[0].patches if np.isfinite(b.get_height()))
    want = sorted(round(s["methods"][m]["train_s"] * 1e3, 9) for s in r["shapes"].values() for m in s["methods"]
                  if m != "reference")
    assert heights == want
    plt.close(fig)
    targets = {"q1": (1.0, 2.0), "q2": (3.0, 4.0)}
    fig = bench.plot_targets(r, targets)
    fwd = [b.get_height() for b in fig.axes[0].patches]
    assert fwd == [bench.best_ratio(r, n, "forward_ratio") for n in ("q1", "q2")]
    assert bench.best_ratio(r, "q1", "train_ratio") == min(
        r["shapes"]["q1"]["methods"][m]["train_ratio"] for m in bench.FAST_METHODS
        if m in r["shapes"]["q1"]["methods"])
    plt.close(fig)
    table = bench.format_memory(r).splitlines()
    assert table[0].split()[:3] == ["shape", "im2col", "matrix"] and len(table) == len(r["shapes"]) + 2
    assert set(bench.TARGETS) == set(bench.SHAPES)


def test_ratios_are_medians_of_rounds_with_their_spread(quick_result):
    for s in quick_result["shapes"].values():
        assert s["best_forward"] != "auto" and s["best_train"] != "auto"
        for row in s["methods"].values():
            for kind in ("forward", "train"):
                low, mid, high = (row[f"{kind}_ratio{x}"] for x in ("_min", "", "_max"))
                assert 0 < low <= mid <= high
            assert row["max_rel_diff"] < 1e-3 and row["train_max_rel_diff"] < 1e-3
    text = bench.format_table(quick_result)
    assert "(min-max)" in text and "load average" in text


def test_compare_two_runs(quick_result, tmp_path):
    newer = json.loads(json.dumps(quick_result))
    row = newer["shapes"]["q1"]["methods"]["strided"]
    row["forward_ratio"] = 2 * quick_result["shapes"]["q1"]["methods"]["strided"]["forward_ratio"]
    text = bench.compare(quick_result, newer)
    strided = [line for line in text.splitlines() if line.startswith("q1") and "strided" in line]
    assert len(strided) == 1 and "+100%" in strided[0]
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(quick_result))
    b.write_text(json.dumps(newer))
    assert bench.main(["--compare", str(a), str(b)]) == text

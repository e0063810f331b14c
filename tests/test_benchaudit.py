"""The audit of method='auto' (convbook.benchaudit) on tiny shapes: its structure and
what it marks, never how fast anything ran."""

import json

import numpy as np
import pytest

from convbook import bench, benchaudit, engine
from convbook.shapes import conv_params


@pytest.fixture(scope="module")
def quick_audit():
    return benchaudit.audit(bench.QUICK_SHAPES, repeat=2)


def test_every_pass_times_every_candidate_against_auto(quick_audit):
    assert quick_audit["dtype"] == "float32" and quick_audit["repeat"] == 2
    assert set(quick_audit["shapes"]) == set(bench.QUICK_SHAPES)
    for name, layer in quick_audit["shapes"].items():
        s = bench.QUICK_SHAPES[name]
        assert set(layer) == set(benchaudit.PASSES)
        x_shape, w_shape = (s.n, s.c, s.hw, s.hw), (s.f, s.c, s.k, s.k)
        p = conv_params(s.k, stride=s.stride, padding=s.padding)
        for pass_, row in layer.items():
            labels = benchaudit.candidates(pass_, w_shape, p)
            assert list(row["ratios"]) == list(row["spread"]) == list(labels)
            method, route = engine.choose(pass_, x_shape, w_shape, p)
            assert row["auto"] == [method, route] and row["auto_s"] > 0
            assert labels[row["pick"]] == (method, route)  # auto's pick is a candidate
            for label, ratio in row["ratios"].items():
                low, high = row["spread"][label]
                assert 0 < low <= ratio <= high, (name, pass_, label)
    json.dumps(quick_audit)  # JSON-ready, for --json


def test_candidates_are_the_methods_whose_rules_fit_the_layer():
    w3, w5, w7 = (8, 4, 3, 3), (8, 4, 5, 5), (8, 4, 7, 7)
    assert benchaudit.candidates("forward", w3, conv_params(3)) == {
        "strided": ("strided", None),
        "wide": ("wide", None),
        "winograd": ("winograd", None),
    }
    # Winograd only where its tiles compute the layer (below auto's 16-channel floor
    # too: w3 has 4 channels, so the audit also checks that rule)
    for w_shape, p in [
        (w3, conv_params(3, stride=2)),
        (w7, conv_params(7)),
        (w3, conv_params(3, dilation=2)),
        ((8, 2, 3, 3), conv_params(3, groups=2)),
    ]:
        assert set(benchaudit.candidates("grad_weight", w_shape, p)) == {
            "strided",
            "wide",
        }
    routes = benchaudit.candidates("grad_input", w5, conv_params(5))
    assert len(routes) == 6 and routes["winograd/col2im"] == ("winograd", "col2im")


def _row(pick, **ratios):
    return {
        "auto": pick.split("/") + [None] * (pick.count("/") == 0),
        "pick": pick,
        "auto_s": 1e-3,
        "ratios": ratios,
        "spread": {k: [v, v] for k, v in ratios.items()},
    }


def test_a_faster_candidate_is_marked_and_auto_s_own_pick_never():
    result = {
        "dtype": "float32",
        "repeat": 3,
        "shapes": {
            "x": {
                "forward": _row("wide", strided=0.8, wide=0.85),  # wide: the same code
                "grad_weight": _row("strided", strided=1.0, wide=0.95),
            }
        },
    }
    assert benchaudit.faster_than_auto(result) == [("x", "forward", "strided", 0.8)]
    assert benchaudit.faster_than_auto(result, margin=0.96) == [
        ("x", "forward", "strided", 0.8),
        ("x", "grad_weight", "wide", 0.95),
    ]
    text = benchaudit.format_audit(result)
    assert "strided 0.80 <, wide 0.85=" in text
    assert (
        "auto missed a faster candidate 1 time(s):\n  x forward: strided 0.80" in text
    )
    result["shapes"]["x"]["forward"]["ratios"]["strided"] = 0.95
    assert benchaudit.faster_than_auto(result) == []
    assert "no candidate took under 0.9 of auto's time" in benchaudit.format_audit(
        result
    )


def test_the_command_line_runs_the_audit(tmp_path, capsys):
    path = tmp_path / "audit.json"
    out = bench.main(
        ["--audit", "--quick", "--shapes", "q2", "--repeat", "1", "--json", str(path)]
    )
    assert set(out["shapes"]) == {"q2"}
    assert json.loads(path.read_text()) == out
    printed = capsys.readouterr().out
    assert "q2    forward     auto=" in printed and "interleaved rounds" in printed
    with pytest.raises(SystemExit):
        bench.main(["--audit", "--quick", "--shapes", "nope"])
    with pytest.raises(SystemExit):
        bench.main(["--audit", "--quick", "--repeat", "0"])


def test_dtype_and_threads_reach_the_passes(monkeypatch):
    asked = []
    real = engine.options

    def options(**changes):
        asked.append(changes)
        return real(**changes)

    monkeypatch.setattr(benchaudit.engine, "options", options)
    dtypes = set()
    forward = benchaudit.conv2d_forward

    def conv2d_forward(x, w, **kw):
        dtypes.update((x.dtype, w.dtype))
        return forward(x, w, **kw)

    monkeypatch.setattr(benchaudit, "conv2d_forward", conv2d_forward)
    result = benchaudit.audit(
        {"q1": bench.QUICK_SHAPES["q1"]}, repeat=1, dtype=np.float64, threads=1
    )
    assert result["dtype"] == "float64"
    assert asked and all(changes == {"threads": 1} for changes in asked)
    assert dtypes == {np.dtype(np.float64)}

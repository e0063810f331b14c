"""The benchmark's structure on tiny shapes (no timing assertions: speed is reported,
never tested)."""

import copy
import functools
import html.parser
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from convbook import bench, benchenv


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
            assert np.isclose(
                row["forward_gflops"], shape.forward_flops / row["forward_s"] / 1e9
            )
            assert np.isclose(
                row["forward_peak_fraction"], row["forward_gflops"] / s["peak_gflops"]
            )
            # every method computed the same convolution as the baseline (float32)
            assert row["max_rel_diff"] < 1e-4, (name, m)
        assert s["best_forward"] in methods and s["best_forward"] not in (
            "torch",
            "reference",
        )
        base = "torch" if r["baseline"] == "torch" else None
        if base:
            assert methods["torch"]["forward_ratio"] == pytest.approx(1.0)
        else:
            assert min(
                v["forward_ratio"] for k, v in methods.items() if k != "reference"
            ) == pytest.approx(1.0)


def test_json_and_table(quick_result, tmp_path):
    text = bench.format_table(quick_result)
    assert "strided" in text and "q1" in text and "GEMM peak" in text
    json.loads(json.dumps(quick_result))  # JSON-ready


def test_blas_info_lists_threads():
    info = bench.blas_info()
    for lib in info:
        assert lib["threads"] >= 1


def test_cli_quick_writes_json(tmp_path, capsys, monkeypatch):
    pinned = []  # the real pin_malloc would change this test process for good
    settings = dict(benchenv.MALLOC_PINNED)
    monkeypatch.setattr(bench, "pin_malloc", lambda: pinned.append(1) or settings)
    path = tmp_path / "out.json"
    bench.main(["--quick", "--shapes", "q2", "--repeat", "1", "--json", str(path)])
    out = capsys.readouterr().out
    assert "q2" in out
    data = json.loads(path.read_text())
    assert list(data["shapes"]) == ["q2"]
    assert pinned == [1] and data["machine"]["malloc"] == settings
    assert "malloc: pinned, blocks up to 32 MB from the heap" in out


def test_cli_leaves_malloc_alone_when_told(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bench, "pin_malloc", lambda: pytest.fail("pinned"))
    path = tmp_path / "out.json"
    argv = ["--quick", "--shapes", "q1", "--repeat", "1", "--malloc", "default"]
    bench.main(argv + ["--json", str(path)])
    assert "malloc: as the C library set it" in capsys.readouterr().out
    assert json.loads(path.read_text())["machine"]["malloc"] == "default"


def test_env_warning(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    assert any("OPENBLAS_CORETYPE=Haswell" in w for w in benchenv.env_warnings())
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    monkeypatch.delenv("OPENBLAS_L2_SIZE", raising=False)
    assert benchenv.env_warnings() == []


def test_bad_arguments(monkeypatch):
    monkeypatch.setattr(bench, "pin_malloc", lambda: None)  # main() would pin first
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
    methods = {
        m for s in r["shapes"].values() for m in s["methods"] if m != "reference"
    }
    # one bar per (panel, method, shape), and the time panel's heights are the result's
    # times in ms
    assert len(bars) == 3 * len(methods) * len(r["shapes"])
    heights = sorted(
        round(b.get_height(), 9)
        for b in fig.axes[0].patches
        if np.isfinite(b.get_height())
    )
    want = sorted(
        round(s["methods"][m]["train_s"] * 1e3, 9)
        for s in r["shapes"].values()
        for m in s["methods"]
        if m != "reference"
    )
    assert heights == want
    plt.close(fig)


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
    row["forward_ratio"] = (
        2 * quick_result["shapes"]["q1"]["methods"]["strided"]["forward_ratio"]
    )
    text = bench.compare(quick_result, newer)
    strided = [
        line
        for line in text.splitlines()
        if line.startswith("q1") and "strided" in line
    ]
    assert len(strided) == 1 and "+100%" in strided[0]
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(quick_result))
    b.write_text(json.dumps(newer))
    assert bench.main(["--compare", str(a), str(b)]) == text


def test_digits_epoch_row():
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    d = bench.run_digits(repeat=1, methods=("auto",), settle=0)
    assert d["steps"] == 45 and d["torch_s"] > 0
    row = d["auto"]
    assert row["epoch_s"] > 0 and row["ratio_min"] <= row["ratio"] <= row["ratio_max"]


class _Cells(html.parser.HTMLParser):
    """The text of each table row's cells, and which (row, cell) were bold."""

    def __init__(self):
        super().__init__()
        self.rows, self.bold, self._cell, self._in_b = [], set(), None, False

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = ""
        elif tag == "b":
            self._in_b = True

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.rows[-1].append(self._cell)
            self._cell = None
        elif tag == "b":
            self._in_b = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
            if self._in_b:
                self.bold.add((len(self.rows) - 1, len(self.rows[-1])))


def _parse(table):
    parser = _Cells()
    parser.feed(table)
    return parser


def test_html_table_has_a_row_per_layer_and_method(quick_result):
    r = quick_result
    cols = ("forward_s", "forward_ratio", "train_s", "train_peak_fraction")
    table = bench.html_table(r, cols, caption="a <quick> run")
    assert ">a &lt;quick&gt; run</caption>" in table
    parsed = _parse(table)
    head, body = parsed.rows[0], parsed.rows[1:]
    assert head[:2] == ["layer", "method"]
    assert head[2:] == [
        "forwardms",
        "forwardratio",
        "training stepms",
        "training step% peak",
    ]
    assert len(body) == sum(len(s["methods"]) for s in r["shapes"].values())
    k = 0
    for name, s in r["shapes"].items():
        for i, meth in enumerate(sorted(s["methods"], key=bench.METHOD_ORDER.index)):
            row = body[k]
            if i == 0:  # the layer's cell spans its methods' rows
                assert row[0] == name + s["label"].replace("->", "→")
                row = row[1:]
            v = s["methods"][meth]
            spread = f"({v['forward_ratio_min']:.2f}–{v['forward_ratio_max']:.2f})"
            assert row == [
                meth,
                f"{v['forward_s'] * 1e3:.2f}",
                f"{v['forward_ratio']:.2f} {spread}",
                f"{v['train_s'] * 1e3:.2f}",
                f"{100 * v['train_peak_fraction']:.0f}",
            ]
            # the fastest convbook method is bold in the time and ratio columns only
            bold = {c for (rr, c) in parsed.bold if rr == k + 1}
            first = 1 if i == 0 else 0
            assert ({first + 1, first + 2} <= bold) == (meth == s["best_forward"])
            assert (first + 3 in bold) == (meth == s["best_train"])
            assert first + 4 not in bold
            k += 1


def test_html_table_takes_what_the_result_holds():
    row = {"forward_s": 0.01, "forward_ratio": 2.0, "train_s": 0.03}
    old = {  # an old run: no "wide"; a method this version does not know comes last
        "label": "(1, 2->3, 8, 5, 1, 0)",
        "best_forward": "strided",
        "best_train": "strided",
        "methods": {"torch": row, "mystery": row, "strided": row},
    }
    new = {  # a newer one: "wide", Winograd and "auto"; memory for one method only
        "label": "(1, 2->3, 8, 3, 1, 1)",
        "best_forward": "winograd",
        "best_train": "wide",
        "methods": {
            "auto": row,
            "winograd": row,
            "wide": dict(row, forward_peak_mem_x=1.25),
            "tutorial": row,
        },
    }
    cols = ("forward_s", "forward_peak_mem_x")
    table = bench.html_table({"shapes": {"x": old, "y": new}}, cols)
    body = _parse(table).rows[1:]
    methods = ["strided", "torch", "mystery", "tutorial", "wide", "winograd", "auto"]
    assert [r[-3] for r in body] == methods
    assert [r[-1] for r in body] == ["–", "–", "–", "–", "1.25", "–", "–"]
    # a ratio without its spread (a run made before the spread was stored) is the ratio
    ratios = _parse(bench.html_table({"shapes": {"x": old}}, ("forward_ratio",))).rows
    assert [r[-1] for r in ratios[1:]] == ["2.00", "2.00", "2.00"]
    with pytest.raises(ValueError, match=r"\['speed'\] are not in bench.HTML_COLUMNS"):
        bench.html_table({"shapes": {"x": old}}, ("forward_s", "speed"))


STORED_RUNS = Path(__file__).parents[1] / "book" / "data"


def test_every_stored_run_the_chapter_reads_is_checked_below():
    """The parametrized test below finds its files by glob, which would skip it if
    the folder were empty: the files "How fast is it?" names must be among them."""
    chapter = (STORED_RUNS.parent / "benchmarks.ipynb").read_text(encoding="utf-8")
    named = set(re.findall(r"bench-[a-z0-9-]+\.json", chapter))
    assert len(named) >= 9, named
    assert named <= {p.name for p in STORED_RUNS.glob("bench-*.json")}


def test_read_run_stops_on_what_the_chapter_relies_on(tmp_path):
    """Each check of ``read_run`` fails alone on a stored run changed in one place."""
    path = STORED_RUNS / "bench-epyc-zen1-run1.json"
    good = json.loads(path.read_text(encoding="utf-8"))
    assert bench.read_run(path) == good

    cases = [  # (the error, where in the run, what changes there)
        ("baseline is 'fastest', not 'torch'", (), {"baseline": "fastest"}),
        (
            "machine.env is .*'OPENBLAS_CORETYPE': 'Haswell'",
            ("machine", "env"),
            {"OPENBLAS_CORETYPE": "Haswell"},
        ),
        (
            r"a torch forward_ratio 1.1 \(1.1-1.1\)$",
            ("shapes", "a", "methods", "torch"),
            {"forward_ratio": 1.1, "forward_ratio_min": 1.1, "forward_ratio_max": 1.1},
        ),
        (
            r"b strided train_ratio 1.0 \(1.2-",
            ("shapes", "b", "methods", "strided"),
            {"train_ratio": 1.0, "train_ratio_min": 1.2},
        ),
        (
            "c wide: error 2.0e-03 against PyTorch$",
            ("shapes", "c", "methods", "wide"),
            {"train_max_rel_diff": 2e-3},
        ),
    ]
    for message, where, change in cases:
        run = copy.deepcopy(good)
        functools.reduce(dict.__getitem__, where, run).update(change)
        changed = tmp_path / "run.json"
        changed.write_text(json.dumps(run), encoding="utf-8")
        with pytest.raises(ValueError, match=f"^{re.escape(str(changed))}: {message}"):
            bench.read_run(changed)


@pytest.mark.parametrize(
    "name", sorted(p.name for p in STORED_RUNS.glob("bench-*.json"))
)
def test_html_table_of_the_stored_runs(name):
    stored = bench.read_run(STORED_RUNS / name)  # every stored run passes its checks
    n = len(bench.HTML_COLUMNS)
    body = _parse(bench.html_table(stored, tuple(bench.HTML_COLUMNS))).rows[1:]
    assert len(body) == sum(len(s["methods"]) for s in stored["shapes"].values())
    # each layer's first row carries its name; every row has a cell per column
    assert [len(r) for r in body].count(2 + n) == len(stored["shapes"])
    assert all(len(r) in (1 + n, 2 + n) for r in body)


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_reach_numpy_torch_and_the_engine(threads):
    """``threads=`` holds NumPy's BLAS, sets PyTorch's threads and convbook's engine,
    and gives the BLAS back as it was."""
    from convbook import engine

    if threads > (os.cpu_count() or 1):
        pytest.skip(f"{threads} BLAS threads need {threads} CPUs")
    before = benchenv.blas_threads()
    shape = bench.Shape(8, 32, 32, 32, 3, 1, 1)  # enough work for the engine's threads
    x, w, b = np.ones((8, 32, 32, 32)), np.ones((32, 32, 3, 3)), np.ones(32)
    with benchenv.threads_held(threads) as held:
        assert held == threads == benchenv.blas_threads()
        fwd, _ = bench._convbook_fns(shape, "strided", x, w, b, None, threads)
        fwd()
        assert engine.last_plan().threads == threads
    assert benchenv.blas_threads() == before
    r = bench.run(("q1",), repeat=1, quick=True, memory=False, threads=threads)
    assert r["threads"] == r["engine_threads"] == threads
    assert benchenv.blas_threads() == before
    with pytest.raises(ValueError, match="threads"):
        bench.run(("q1",), quick=True, threads=0)


def test_a_round_keeps_the_median_of_back_to_back_calls(quick_result, monkeypatch):
    """Fast methods are timed CALLS times a round (the median kept), slow ones once."""
    assert quick_result["calls_per_round"] == bench.CALLS > 1
    rows = [r for s in quick_result["shapes"].values() for r in s["methods"].values()]
    assert {r["calls_per_round"] for r in rows} <= {1, bench.CALLS}
    assert any(r["calls_per_round"] == bench.CALLS for r in rows)
    assert f"median of up to {bench.CALLS} calls" in bench.format_table(quick_result)
    times = iter([3.0, 1.0, 2.0])
    monkeypatch.setattr(bench, "_timeit", lambda fn: next(times))
    assert bench._median_time(None, 3) == 2.0


def test_cpu_model_names_the_kind_of_chip(tmp_path):
    """The model name with family, model and AVX-512 or AVX2; None without cpuinfo."""
    info = tmp_path / "cpuinfo"
    first = "cpu family\t: 26\nmodel\t\t: 2\nmodel name\t: AMD EPYC\n"
    info.write_text(first + "flags\t\t: fpu avx2 avx512f\n\nprocessor\t: 1\n")
    assert benchenv.cpu_model(info) == "AMD EPYC (family 26, model 2, AVX-512)"
    info.write_text(first + "flags\t\t: fpu avx2\n")
    assert benchenv.cpu_model(info) == "AMD EPYC (family 26, model 2, AVX2)"
    info.write_text("model name\t: Some CPU\n")
    assert benchenv.cpu_model(info) == "Some CPU"
    assert benchenv.cpu_model(tmp_path / "missing") is None


def test_calls_a_round_are_decided_on_a_warm_call(monkeypatch):
    """A method whose first call pays a one-time cost over ``CALLS_UNDER_S`` (PyTorch's
    does, on the run's first layer) is still timed ``CALLS`` times a round."""
    real = bench._convbook_fns

    def slow_first_call(*args):
        fwd, train = real(*args)
        first = [True]

        def fwd_slow_once():
            if first:
                first.clear()
                time.sleep(2.5 * bench.CALLS_UNDER_S)  # PyTorch's: 0.63 s
            return fwd()

        return fwd_slow_once, train

    monkeypatch.setattr(bench, "_convbook_fns", slow_first_call)
    monkeypatch.setattr(bench, "_torch_fns", lambda *args: None)
    monkeypatch.setattr(bench, "_methods_for", lambda *args: ("strided", "wide"))
    r = bench.run(("q1",), repeat=1, quick=True, memory=False, digits=False)
    rows = r["shapes"]["q1"]["methods"]
    assert {m: row["calls_per_round"] for m, row in rows.items()} == dict.fromkeys(
        rows, bench.CALLS
    )


def test_best_ratio_reads_the_runs_fastest_method():
    """The ratio of the method the run marked fastest; other passes refused."""
    layer = {
        "best_forward": "wide",
        "best_train": "strided",
        "methods": {
            "wide": {"forward_ratio": 1.2, "train_ratio": 3.0},
            "strided": {"forward_ratio": 1.5, "train_ratio": 0.9},
        },
    }
    assert bench.best_ratio(layer, "forward") == 1.2
    assert bench.best_ratio(layer, "train") == 0.9
    with pytest.raises(ValueError, match="pass_"):
        bench.best_ratio(layer, "backward")


@pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_fresh_process_faults_in_its_buffers_until_a_large_block_is_freed():
    faults = benchenv.fresh_process_faults(calls=3)
    assert set(faults) == {"fresh", "after"}
    assert faults["fresh"][0] > 100 and faults["after"][0] < faults["fresh"][0] / 10
    assert all(seconds > 0 for _, seconds in faults.values())


def test_fresh_process_faults_is_none_off_glibc(monkeypatch):
    monkeypatch.setattr(benchenv.sys, "platform", "darwin")
    assert benchenv.fresh_process_faults() is None
    assert benchenv.pin_malloc() is None


@pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_pin_malloc_keeps_a_new_process_from_faulting_in_its_buffers():
    faults = benchenv.fresh_process_faults(calls=5, pin=True)  # in a child process
    assert faults["fresh"][0] < 10 and faults["after"][0] < 10


def test_the_table_says_how_malloc_was_set(quick_result):
    result = copy.deepcopy(quick_result)
    result["machine"]["malloc"] = dict(benchenv.MALLOC_PINNED)
    assert "malloc: pinned, blocks up to 32 MB" in bench.format_table(result)
    result["machine"]["malloc"] = "default"
    assert "malloc: as the C library set it" in bench.format_table(result)
    del result["machine"]["malloc"]  # runs stored before it was recorded
    assert "malloc" not in bench.format_table(result)


@pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_untouched_buffer_reports_both_processes():
    seen = benchenv.untouched_buffer(sets=3)  # two child processes
    assert set(seen) == {"new", "engine first"}
    for got in seen.values():
        assert set(got) == {"first", "wider_faults", "then"}
        assert got["first"] > 0 and got["then"] > 0 and got["wider_faults"] >= 0
    if [lib["library"] for lib in benchenv.blas_info()] == ["openblas"]:
        assert seen["new"]["wider_faults"] > 0
        assert seen["engine first"]["wider_faults"] == 0  # the engine had written it


def test_untouched_buffer_is_none_off_glibc(monkeypatch):
    monkeypatch.setattr(benchenv.sys, "platform", "darwin")
    assert benchenv.untouched_buffer() is None

"""The batch engine: sample groups and threads, its settings, its rules, and thread
safety.

Small test problems stay below the threading threshold, so the tests that exercise
threads lower it with ``cb.options(thread_min_work=0)`` and check, through
:func:`convbook.engine.last_plan`, that worker threads really ran.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import read_only, reference_all
from threadpoolctl import threadpool_info

import convbook as cb
from convbook import engine
from convbook.methods import strided, wide

BATCHED = ["strided", "wide"]
CASES = [
    dict(stride=1, padding=1),
    dict(stride=2, padding=(1, 0)),
    dict(stride=1, padding=0, dilation=2),
    dict(stride=(2, 1), padding="valid", groups=2),
]


def _arrays(case, n=5):
    rng = np.random.default_rng(7)
    g = case.get("groups", 1)
    x = rng.standard_normal((n, 4, 9, 8))
    w = rng.standard_normal((6, 4 // g, 3, 3))
    b = rng.standard_normal(6)
    return x, w, b


@functools.cache
def _reference(k):
    """CASES[k]'s x, w, b and :func:`conftest.reference_all` of them, computed once for
    the 27 tests of the case below (alone: 21 s with the loops run in each, 4 s so)."""
    x, w, b = _arrays(CASES[k])
    return read_only(x, w, b, *reference_all(x, w, b, CASES[k]))


@pytest.mark.parametrize("method", [*BATCHED, "auto"])
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("gemm_columns", [1, 40, 10**6])
@pytest.mark.parametrize("k", range(len(CASES)))
def test_every_batch_split_gives_the_reference(method, threads, gemm_columns, k):
    case = CASES[k]
    x, w, b, want, dout, rdx, rdw, _ = _reference(k)
    # group_numbers=0: gemm_columns alone sizes the groups, down to one sample
    split = dict(gemm_columns=gemm_columns, group_numbers=0, thread_min_work=0)
    with cb.options(threads=threads, **split):
        got = cb.conv2d_forward(x, w, b, method=method, **case)
        plan = engine.last_plan()
        for route in ("col2im", "rot180"):
            dx = cb.conv2d_grad_input(
                dout, w, x.shape, method=method, route=route, **case
            )
            np.testing.assert_allclose(dx, rdx, rtol=1e-10, atol=1e-12)
        dx, dw, _ = cb.conv2d_backward(dout, x, w, method=method, **case)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, rdx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dw, rdw, rtol=1e-10, atol=1e-12)
    # the threads asked for ran: one per group, at most `threads`
    assert plan.samples == 5 and plan.threads == min(threads, plan.groups)
    if gemm_columns == 1 and threads < 3:  # one sample per group
        assert plan.groups == 5


def test_groups_grow_to_group_numbers_and_even_out_over_threads():
    # benchmark layer c: 64 samples, 32 -> 64 channels, 8 x 8 outputs, stride 2
    x_shape, w_shape = (64, 32, 16, 16), (64, 32, 3, 3)
    x, w = np.zeros(x_shape, np.float32), np.zeros(w_shape, np.float32)
    # the strided forward pass writes its products into the batch's output, so a
    # sample's numbers are its columns alone; the weight gradient holds its outputs too
    numbers = 32 * 9 * 64  # 18,432
    with cb.options(threads=1):
        cb.conv2d_forward(x, w, stride=2, padding=1, method="strided")
        assert engine.last_plan().per_group == 34  # 640,000 // 18,432
        cb.conv2d_grad_weight(np.zeros((64, 64, 8, 8)), x, w_shape, stride=2, padding=1)
        assert engine.last_plan().per_group == 28  # 640,000 // ((288 + 64) * 64)
        with cb.options(group_numbers=0):  # 512 columns of 64: 8 samples
            cb.conv2d_forward(x, w, stride=2, padding=1, method="strided")
            assert engine.last_plan().per_group == 8
        with cb.options(group_numbers=10 * numbers):
            cb.conv2d_forward(x, w, stride=2, padding=1, method="strided")
            assert engine.last_plan().per_group == 10
        # wide rows hold their forward products to crop them: columns and outputs,
        # on rows of 9 numbers (72 columns a sample)
        cb.conv2d_forward(x, w, stride=2, padding=1, method="wide")
        assert engine.last_plan().per_group == 640_000 // ((32 * 9 + 64) * 72)
    assert strided.PRODUCTS_INTO_OUT and not wide.PRODUCTS_INTO_OUT
    # with two threads, at most a quarter of the batch a group: half the batch's
    # columns at once
    with cb.options(threads=2):
        cb.conv2d_forward(x, w, stride=2, padding=1, method="strided")
        assert engine.last_plan() == engine.Plan(64, 16, 4, 2)
    # groups of 23 would leave one thread two of them (41 samples) and the other one:
    # evened out to one group of 32 each
    with cb.options(threads=2) as opts:
        split = engine.split_for_threads
        assert [split(64, per, 1e9, opts) for per in (8, 16, 20, 23, 28, 40)] == [
            8,
            16,
            16,  # 20: 64 / 40 = 1.6 groups a thread, rounded to 2
            32,
            32,
            32,
        ]
        assert split(5, 1, 1e9, opts) == 1  # many groups a thread: left alone
        assert split(64, 28, 0, opts) == 28  # no threads will run: left alone
    with cb.options(threads=1) as opts:
        assert engine.split_for_threads(64, 40, 1e9, opts) == 40  # one thread


@pytest.mark.parametrize("method", BATCHED)
def test_a_single_thread_when_the_work_is_small(method):
    x, w, b = _arrays(CASES[0])
    with cb.options(threads=2):  # the default threshold, 3e7 multiply-adds
        cb.conv2d_forward(x, w, b, method=method, padding=1)
    assert engine.last_plan().threads == 1
    with cb.options(threads=2, thread_min_work=0):
        cb.conv2d_forward(x, w, b, method=method, padding=1)
    assert engine.last_plan().threads == 2


def test_options_are_scoped_validated_and_per_thread():
    default = cb.engine.current_options()
    with cb.options(threads=1, gemm_columns=7) as opts:
        assert opts.threads == 1 and engine.current_options().gemm_columns == 7
        seen = {}
        t = threading.Thread(target=lambda: seen.update(opts=engine.current_options()))
        t.start()
        t.join()
        assert seen["opts"] == default  # another thread keeps its own settings
    assert engine.current_options() == default
    with pytest.raises(TypeError, match=r"unknown settings \['thread'\]"):
        with cb.options(thread=1):
            pass
    with pytest.raises(
        ValueError, match="threads must be None or a positive int, got 0"
    ):
        with cb.options(threads=0):
            pass
    with pytest.raises(ValueError, match="gemm_columns must be a positive int"):
        with cb.options(gemm_columns=-1):
            pass


def test_wide_rows_rule():
    p1 = cb.conv_params(3, padding=1)
    fw = "forward"
    layer = (1, 64, 32, 32), (64, 64, 3, 3), p1
    with cb.options(blas_avx512=True):  # the rule measured on AVX-512 kernels
        assert engine.use_wide_rows(fw, *layer)  # 64*2 < 8*32
        assert engine.use_wide_rows("grad_weight", *layer)
        assert not engine.use_wide_rows(fw, (1, 128, 28, 28), (128, 128, 3, 3), p1)
    with cb.options(blas_avx512=False):  # AVX2 kernels: the input gradient only
        assert not engine.use_wide_rows(fw, *layer)
        assert not engine.use_wide_rows("grad_weight", *layer)
        p0 = cb.conv_params(3, padding=(1, 0))  # OW = W - 2: rows do not shift
        assert engine.use_wide_rows("grad_input", (1, 64, 32, 32), (64, 64, 3, 3), p0)
    with cb.options(blas_avx512=None):  # the default: as the BLAS says
        assert engine.use_wide_rows(fw, *layer) == engine.blas_avx512()
    # stride 1 and OW = W: the strided method's shifted rows for the input gradient
    assert not engine.use_wide_rows("grad_input", *layer)
    assert engine.use_wide_rows("grad_input", (1, 8, 28, 28), (8, 8, 5, 5), p1)  # 26
    p2 = cb.conv_params(3, stride=2)
    # at stride 2: plain strided columns for the forward pass and the weight gradient,
    # wide rows for the col2im input gradient where Cg <= OW (7 here)
    assert not engine.use_wide_rows(fw, (1, 128, 28, 28), (128, 128, 3, 3), p2)
    assert not engine.use_wide_rows("grad_weight", (1, 32, 16, 16), (64, 32, 3, 3), p2)
    assert engine.use_wide_rows("grad_input", (1, 4, 16, 16), (64, 4, 3, 3), p2)
    assert engine.use_wide_rows("grad_input", (1, 7, 16, 16), (64, 7, 3, 3), p2)
    # Cg > OW: the strided method's add-back channels last (where use_columns_last
    # says so) or by rows; a 1 x 1 kernel: no windows overlap
    assert not engine.use_wide_rows("grad_input", (1, 8, 16, 16), (64, 8, 3, 3), p2)
    grouped = cb.conv_params(3, stride=2, groups=2)  # Cg = 7 <= OW
    assert engine.use_wide_rows("grad_input", (1, 14, 16, 16), (64, 7, 3, 3), grouped)
    one = cb.conv_params(1, stride=2)
    assert not engine.use_wide_rows("grad_input", (1, 4, 16, 16), (64, 4, 1, 1), one)
    layer_c = (64, 32, 16, 16), (64, 32, 3, 3), cb.conv_params(3, stride=2, padding=1)
    assert engine.choose("grad_input", *layer_c, route="col2im") == (
        "strided",
        "col2im",
    )
    with cb.options(wide_rows=False):
        assert not engine.use_wide_rows("grad_input", (1, 1, 28, 28), (1, 1, 3, 3), p1)


@pytest.mark.parametrize(
    ("kernels", "avx512"),
    [(["Haswell"], False), (["SkylakeX"], True), (["Zen", "Cooperlake"], True)],
)
def test_blas_avx512_reads_openblas_kernel(monkeypatch, kernels, avx512):
    import threadpoolctl

    infos = [
        {"user_api": "blas", "internal_api": "openblas", "architecture": k}
        for k in kernels
    ]
    monkeypatch.setattr(threadpoolctl, "threadpool_info", lambda: infos)
    engine.blas_avx512.cache_clear()
    try:
        assert engine.blas_avx512() is avx512
    finally:
        engine.blas_avx512.cache_clear()


def test_blas_avx512_without_openblas_asks_the_cpu(monkeypatch):
    import threadpoolctl

    monkeypatch.setattr(threadpoolctl, "threadpool_info", lambda: [])
    engine.blas_avx512.cache_clear()
    try:
        features = np._core._multiarray_umath.__cpu_features__
        assert engine.blas_avx512() is bool(features.get("AVX512F", False))
    finally:
        engine.blas_avx512.cache_clear()


def test_blas_avx512_option_is_checked():
    with pytest.raises(ValueError, match="blas_avx512 must be None, True or False"):
        with cb.options(blas_avx512="yes"):
            pass


def test_input_gradient_route_rule():
    p1, p2 = cb.conv_params(3, padding=1), cb.conv_params(3, stride=2, padding=1)
    route = engine.input_gradient_route
    assert route((1, 64, 8, 8), (64, 64, 3, 3), p1) == "rot180"  # F <= C, same size
    assert route((1, 3, 8, 8), (32, 3, 3, 3), p1) == "col2im"  # F > C
    assert route((1, 32, 8, 8), (32, 32, 3, 3), p2) == "col2im"  # F * S * S > C
    assert route((1, 128, 8, 8), (32, 128, 3, 3), p2) == "rot180"  # F * S * S <= C
    # a classifier head: one output per sample from an 8x8 map, F = 10 < C = 64
    assert route((64, 64, 8, 8), (10, 64, 8, 8), cb.conv_params(8)) == "col2im"


def test_auto_choice():
    p1 = cb.conv_params(3, padding=1)
    assert engine.choose("forward", (32, 64, 32, 32), (64, 64, 3, 3), p1) == (
        "winograd",
        None,
    )
    assert engine.choose("forward", (16, 3, 64, 64), (32, 3, 3, 3), p1)[0] != "winograd"
    assert engine.choose("grad_input", (8, 128, 28, 28), (128, 128, 3, 3), p1) == (
        "winograd",
        "rot180",
    )
    with pytest.raises(ValueError, match="pass_ must be"):
        engine.choose("backward", (1, 1, 3, 3), (1, 1, 3, 3), p1)


@pytest.mark.parametrize(
    "method", ["reference", "tutorial", *BATCHED, "winograd", "auto"]
)
def test_a_batch_of_no_samples(method):
    x = np.zeros((0, 4, 6, 6))
    w = np.ones((5, 4, 3, 3))
    y = cb.conv2d_forward(x, w, np.zeros(5), padding=1, method=method)
    assert y.shape == (0, 5, 6, 6)
    dx, dw, db = cb.conv2d_backward(y, x, w, padding=1, method=method)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == (5,)
    assert not dw.any() and not db.any()


# --------------------------------------------------------------------------------------
# Thread safety: what a sequential call returns, and the BLAS left as it was


def _blas_threads():
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def test_concurrent_calls_return_what_sequential_calls_return():
    rng = np.random.default_rng(0)
    # above the default threading threshold (3e7 multiply-adds), so every call uses the
    # engine's workers and the BLAS limit, overlapping with the others
    x = rng.standard_normal((8, 16, 32, 32)).astype(np.float32)
    w = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    x2 = rng.standard_normal((6, 8, 20, 20)).astype(np.float32)
    w2 = rng.standard_normal((32, 8, 3, 3)).astype(np.float32)
    jobs = [
        lambda: cb.conv2d_forward(x, w, padding=1, method="strided"),
        lambda: cb.conv2d_forward(x, w, padding=1, method="wide"),
        lambda: cb.conv2d_forward(x, w, padding=1, method="winograd"),
        lambda: cb.conv2d_forward(x2, w2, stride=2, method="auto"),
        lambda: cb.conv2d_backward(
            np.ones((8, 32, 32, 32), np.float32), x, w, padding=1
        ),
        lambda: cb.conv2d_forward(
            x[:1], w[:4], padding=1
        ),  # small: the BLAS's own threads
    ]
    before = _blas_threads()
    sequential = [job() for job in jobs]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda k: jobs[k % len(jobs)](), range(48)))
    for k, got in enumerate(results):
        want = sequential[k % len(jobs)]
        for g, s in zip(
            got if isinstance(got, tuple) else [got],
            want if isinstance(want, tuple) else [want],
            strict=True,
        ):
            np.testing.assert_array_equal(g, s)
    assert _blas_threads() == before


def test_overlapping_calls_restore_the_blas_threads():
    before = _blas_threads()
    entered, release = threading.Barrier(3), threading.Event()

    def hold():
        with engine.blas_single_thread():
            entered.wait()
            release.wait()

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        entered.wait(timeout=10)  # both inside
        inside = _blas_threads()
    finally:
        release.set()
        for t in threads:
            t.join()
    assert inside and all(n == 1 for n in inside), inside
    assert _blas_threads() == before


def test_without_threads_the_engine_runs_on_the_calling_thread(monkeypatch):
    """Pyodide in a browser: no thread can start. convbook still imports and runs."""
    x, w, b = _arrays(CASES[0])
    want = cb.conv2d_forward(x, w, b, method="reference", padding=1)
    monkeypatch.setattr(engine.sys, "platform", "emscripten")
    with cb.options(threads=2, thread_min_work=0):
        got = cb.conv2d_forward(x, w, b, method="strided", padding=1)
    assert engine.last_plan().threads == 1
    np.testing.assert_allclose(got, want, rtol=1e-12)

    def no_pool(_workers):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(engine.sys, "platform", "linux")
    monkeypatch.setattr(engine, "_pool", no_pool)
    with cb.options(threads=2, thread_min_work=0):
        again = cb.conv2d_forward(x, w, b, method="strided", padding=1)
    np.testing.assert_array_equal(again, got)


def test_a_route_asked_for_is_honoured_by_auto():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 16, 6, 6))
    w = rng.standard_normal((16, 16, 3, 3))
    dout = rng.standard_normal((2, 16, 6, 6))
    p = cb.conv_params(3, padding=1)
    assert engine.choose("grad_input", x.shape, w.shape, p)[0] == "winograd"
    # (stride 1, OW = W: the strided method's shifted rows)
    assert engine.choose("grad_input", x.shape, w.shape, p, route="col2im") == (
        "strided",
        "col2im",
    )
    want = cb.conv2d_grad_input(dout, w, x.shape, padding=1, method="reference")
    for route in cb.ROUTES:
        got = cb.conv2d_grad_input(dout, w, x.shape, padding=1, route=route)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_winograd_takes_col2im_on_tiles_where_filters_outnumber_the_input():
    """winograd_input_route: col2im on tiles where F*H*W > 2*C*OH*OW (benchmark layer
    e), rot180 elsewhere; a route asked for stays on Winograd's tiles unless it is
    col2im where rot180 is Winograd's choice."""
    e = ((32, 16, 28, 28), (32, 16, 5, 5), cb.conv_params(5))
    a = ((32, 64, 32, 32), (64, 64, 3, 3), cb.conv_params(3, padding=1))
    assert engine.choose("grad_input", *e) == ("winograd", "col2im")
    assert engine.choose("grad_input", *e, route="rot180") == ("winograd", "rot180")
    assert engine.choose("grad_input", *a) == ("winograd", "rot180")
    assert engine.choose("grad_input", *a, route="col2im")[1] == "col2im"
    assert engine.choose("grad_input", *a, route="col2im")[0] != "winograd"
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 16, 9, 9))
    w = rng.standard_normal((32, 16, 5, 5))
    dout = rng.standard_normal((2, 32, 5, 5))
    assert engine.choose("grad_input", x.shape, w.shape, cb.conv_params(5))[1] == (
        "col2im"
    )
    want = cb.conv2d_grad_input(dout, w, x.shape, method="reference")
    got = cb.conv2d_grad_input(dout, w, x.shape)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("m", [2, 4, 6])
def test_winograd_tile_size_reaches_the_weight_gradient(m, monkeypatch):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 7, 7))
    w = rng.standard_normal((4, 3, 3, 3))
    dout = rng.standard_normal((2, 4, 7, 7))
    seen = []
    real = cb.winograd.tiles_grad_weight
    monkeypatch.setattr(
        cb.methods.winograd,
        "tiles_grad_weight",
        lambda xp, d, m_, r: seen.append(m_) or real(xp, d, m_, r),
    )
    want = cb.conv2d_grad_weight(dout, x, w.shape, padding=1, method="reference")
    got = cb.conv2d_grad_weight(dout, x, w.shape, padding=1, method="winograd", m=m)
    _, dw, _ = cb.conv2d_backward(dout, x, w, padding=1, method="winograd", m=m)
    assert set(seen) == {m}
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(dw, want, rtol=1e-11, atol=1e-11)


_TOUCH_CHILD = """
import json, resource, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
import numpy as np
import convbook as cb

pool = ThreadPoolExecutor(2)  # the same two threads throughout
a, b = np.ones((4, 1024), np.float32), np.ones((1024, 2048), np.float32)


def one_at_a_time():  # the product in each of the two threads, one after the other
    together, first = threading.Barrier(2), threading.Event()
    def run(k):
        together.wait(timeout=10)  # one task a thread
        if k:
            first.wait(timeout=10)
        a @ b
        first.set()
    list(pool.map(run, range(2)))


def second_buffer():  # faults of the product while a longer one holds the first buffer
    started = threading.Event()
    def long():
        started.set()
        np.ones((512, 1024), np.float32) @ b  # about 2 GFLOP
    def measured():
        out = np.empty((4, 2048), np.float32)
        started.wait(timeout=10)
        time.sleep(0.005)
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        np.matmul(a, b, out=out)
        return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before
    held = pool.submit(long)
    faults = pool.submit(measured).result()
    held.result()
    return faults


with cb.engine.blas_single_thread():  # the products on the calling threads' buffers
    one_at_a_time()  # what a product pays in a new thread, and the first buffer
    if sys.argv[1] == "conv":  # a small batch on two threads
        x, w = np.ones((4, 3, 8, 8)), np.ones((2, 3, 3, 3))
        with cb.options(threads=2, thread_min_work=0):
            cb.conv2d_forward(x, w, method="strided")
    print(json.dumps([second_buffer(), second_buffer()]))
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux")
    or not any(i["internal_api"] == "openblas" for i in threadpool_info()),
    reason="OpenBLAS's buffers, counted by Linux's per-thread page faults",
)
@pytest.mark.parametrize("first", ["conv", "nothing"])
def test_the_first_batch_touches_openblas_buffers_of_each_thread(first):
    """In a new process, a product that runs while another holds OpenBLAS's first
    buffer writes pages of the second that no product wrote before (page faults), unless
    a batch on two threads has run: then it faults no more than when run again."""
    run = subprocess.run(
        [sys.executable, "-c", _TOUCH_CHILD, first],
        capture_output=True,
        text=True,
        check=True,
    )
    cold, again = json.loads(run.stdout)
    if first == "conv":
        assert cold <= again, (cold, again)
    else:  # the check can fail: without the batch the buffers are new
        assert cold > again, (cold, again)

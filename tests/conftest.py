"""Shared convolution settings for the tests: every setting PyTorch's conv2d supports,
small enough for the loop reference, and the reference's answers for them (computed
once)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import traceback
from pathlib import Path

import numpy as np
import pytest

import convbook as cb

# (N, C, H, W), F, (KH, KW), hyper-parameters
CASES = {
    "plain-3x3": ((2, 3, 6, 5), 4, (3, 3), dict()),
    "batch1-1x1": ((1, 3, 4, 5), 2, (1, 1), dict()),
    "1x1-stride2": ((2, 2, 5, 6), 3, (1, 1), dict(stride=2)),
    "stride2-pad1": ((2, 2, 7, 7), 3, (3, 3), dict(stride=2, padding=1)),
    "stride3-remainder": (
        (1, 2, 8, 9),
        2,
        (3, 3),
        dict(stride=3),
    ),  # (8-3)%3 = 2 unused rows, (9-3)%3 = 0
    "stride-pair-pad-pair": (
        (2, 2, 7, 8),
        2,
        (3, 2),
        dict(stride=(2, 1), padding=(1, 2)),
    ),
    "even-kernel": ((1, 2, 5, 6), 3, (2, 2), dict()),
    "nonsquare-kernel": ((2, 1, 6, 7), 2, (2, 4), dict(padding=(0, 1))),
    "dilation2": ((1, 2, 7, 8), 2, (3, 3), dict(dilation=2)),
    "dilation-pair-stride": (
        (2, 2, 9, 8),
        2,
        (2, 3),
        dict(dilation=(2, 1), stride=2, padding=1),
    ),
    "same-odd": ((1, 2, 5, 6), 2, (3, 3), dict(padding="same")),
    "same-even": (
        (2, 2, 5, 4),
        3,
        (2, 4),
        dict(padding="same"),
    ),  # PyTorch pads the extra at bottom/right
    "same-dilated-even": ((1, 2, 6, 6), 2, (2, 2), dict(padding="same", dilation=3)),
    "valid": ((1, 2, 5, 5), 2, (3, 3), dict(padding="valid")),
    "groups2": ((2, 4, 5, 5), 6, (3, 3), dict(groups=2, padding=1)),
    "depthwise": ((2, 3, 6, 5), 3, (3, 3), dict(groups=3, stride=2, padding=1)),
    "depthwise-multiplier": ((1, 2, 5, 6), 4, (2, 3), dict(groups=2, dilation=2)),
    "pad-larger-than-kernel": ((1, 1, 3, 3), 2, (2, 2), dict(padding=3, stride=2)),
    "kernel-equals-input": ((2, 2, 3, 4), 2, (3, 4), dict()),
    # many channels, few output columns, a stride: the strided method copies its
    # columns channels last (strided.use_columns_last)
    "channels-last": ((2, 6, 7, 8), 4, (3, 3), dict(stride=2, padding=1)),
    "channels-last-groups": (
        (2, 10, 7, 9),
        4,
        (3, 2),
        dict(stride=(2, 3), padding=1, dilation=(1, 2), groups=2),
    ),
    # stride 1 and OW = W: the strided method copies shifted rows (rows_shift)
    "shifted-rows": (
        (2, 4, 7, 6),
        4,
        (2, 3),
        dict(padding=(1, 2), dilation=(1, 2), groups=2),
    ),
    "everything": (
        (2, 4, 9, 10),
        4,
        (3, 2),
        dict(stride=(2, 3), padding=(2, 1), dilation=(1, 2), groups=2),
    ),
}


def make_case(name, dtype=np.float64, seed=0, bias=True):
    """x, w, b, kwargs for a named case, drawn from a seeded generator."""
    x_shape, f, (kh, kw), kwargs = CASES[name]
    groups = kwargs.get("groups", 1)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((f, x_shape[1] // groups, kh, kw)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype) if bias else None
    return x, w, b, dict(kwargs)


def random_like(shape, seed=1, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def read_only(*arrays):
    """The arrays, made read-only: shared by several tests (cached), none may alter
    them for the others, and a method that wrote into its input would raise."""
    for a in arrays:
        if a is not None:
            a.flags.writeable = False
    return arrays


def reference_all(x, w, b, kw):
    """The loop reference's output and gradients for a random ``dout``."""
    y = cb.conv2d_forward(x, w, b, method="reference", **kw)
    dout = random_like(y.shape, seed=7, dtype=y.dtype)
    dx, dw, db = cb.conv2d_backward(dout, x, w, method="reference", **kw)
    return y, dout, dx, dw, db


@pytest.fixture(scope="session", params=sorted(CASES))
def case(request):
    """``(x, w, b, kwargs, y, dout, dx, dw, db)`` for every named case, by the
    reference."""
    x, w, b, kw = make_case(request.param)
    x, w, b = read_only(x, w, b)
    return (x, w, b, kw, *read_only(*reference_all(x, w, b, kw)))


# --------------------------------------------------------------------------------------
# Headless Chromium, for the browser tests of the built book and of JupyterLab

#: Debian's chromium (never a downloaded browser: TRAPS.md); ``CHROMIUM`` overrides it.
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
# the machine has no internet: without these, chromium's background connections fail
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
]


def chromium_missing() -> str | None:
    """Why the browser tests must skip (no chromium binary), or ``None``."""
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return None
    return f"no chromium at {CHROMIUM} (install it: apt-get install -y chromium)"


def launch_chromium(playwright):
    """Headless Chromium from :data:`CHROMIUM`, offline-safe."""
    executable = str(CHROMIUM)
    return playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)


def _playwright_pids() -> list[int]:
    """The processes below this one that run playwright's driver or chromium."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:  # ended meanwhile
                continue
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [os.getpid()]
    while todo:
        for pid in children.get(todo.pop(), []):
            todo.append(pid)
            try:
                exe = os.readlink(f"/proc/{pid}/exe")
            except OSError:
                continue
            if "chrom" in exe or f"playwright{os.sep}driver" in exe:
                found.append(pid)
    return found


class Watch:
    """What :func:`browser_deadline` saw: ``stack`` is where the test was waiting when
    the deadline passed and playwright was stopped, ``None`` if it did not."""

    stack: str | None = None


@contextlib.contextmanager
def browser_deadline(seconds: float):
    """Stop playwright (its driver and chromium) if the block runs past ``seconds``.

    playwright's ``evaluate``, ``new_page`` and ``close`` calls have no timeout of their
    own: one that never returned held a CI run for 75 minutes (test 28 of the browser
    test, 2026-12-04). Stopping chromium alone does not always end such a call (a
    ``new_page`` pending when chromium was killed waited on); stopping the driver does:
    the call raises at once, and the playwright instance is then spent (start a new
    one). The yielded :class:`Watch` holds the test's stack at that moment."""
    watch, main = Watch(), threading.get_ident()
    here = str(Path(__file__).parent)
    try:  # playwright's sync calls wait in a greenlet of their own: the test's is this
        from greenlet import getcurrent

        test = getcurrent()
    except ImportError:
        test = None

    def stop():
        try:
            frame = getattr(test, "gr_frame", None) or sys._current_frames()[main]
            frames = traceback.extract_stack(frame)
            ours = [i for i, f in enumerate(frames) if f.filename.startswith(here)]
            # the tests' own frames, and the call they made (playwright's method)
            shown = (
                [frames[i] for i in ours] + frames[ours[-1] + 1 :][:1] if ours else []
            )
            watch.stack = "".join(traceback.format_list(shown or frames[-4:])).rstrip()
        except Exception as err:  # the stop must happen even so
            watch.stack = f"(where it waited could not be read: {err!r})"
        for pid in _playwright_pids():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    timer = threading.Timer(seconds, stop)
    timer.daemon = True
    timer.start()
    try:
        yield watch
    finally:
        timer.cancel()

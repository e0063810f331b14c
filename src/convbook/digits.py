"""The digits experiment: a small all-convolutional network trained with ``Conv2D``.

scikit-learn's handwritten digits (1,797 images of 8x8 pixels, shipped inside
scikit-learn: nothing is downloaded), a stratified seeded 80/20 split, the network, a
training loop with a seeded minibatch order, its PyTorch twin for the step-for-step
comparison, and the figures of the chapter "Train a network with your layer".

The network has no pooling layer: a stride-2 convolution halves the map, and a last
convolution whose kernel covers the whole remaining map gives the ten logits, as in
Springenberg et al., "Striving for Simplicity: The All Convolutional Net" (ICLR 2015
workshop, arXiv:1412.6806).

Needs scikit-learn (:func:`load`), PyTorch (the ``*_torch`` functions and
:func:`epoch_fns`), tqdm (``progress=True``) and matplotlib (the ``plot_*`` functions);
each is imported where it is used.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .layers import Conv2D
from .nn import SGD, Flatten, ReLU, Sequential, softmax_cross_entropy, to_torch

__all__ = [
    "EPOCHS",
    "BATCH_SIZE",
    "LR",
    "MOMENTUM",
    "Digits",
    "load",
    "network",
    "batches",
    "train_step",
    "fit",
    "train",
    "torch_step",
    "train_torch",
    "predict",
    "accuracy",
    "epoch_fns",
    "confusion_matrix",
    "feature_maps",
    "LiveCurves",
    "plot_digits",
    "plot_history",
    "plot_filters",
    "plot_feature_maps",
    "plot_confusion",
]

#: The chapter's training run: epochs, minibatch size, learning rate, momentum.
EPOCHS = 15
BATCH_SIZE = 32
LR = 0.05
MOMENTUM = 0.9


class Digits(NamedTuple):
    """The split data: images ``(N, 1, 8, 8)``, pixels in [0, 1]; labels ``(N,)``."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load(*, test_size=0.2, seed=0, dtype=np.float64):
    """scikit-learn's digits, split 80/20 with every class in the same proportion.

    Parameters
    ----------
    test_size : float
        The fraction held out for testing.
    seed : int
        Seeds the split.
    dtype : numpy float dtype
        Of the images (the network's dtype: ``Conv2D`` refuses another).

    Returns
    -------
    Digits
        ``x_*`` of shape ``(N, 1, 8, 8)``, pixels scaled from 0..16 to [0, 1];
        ``y_*`` the digits, int64.

    Examples
    --------
    >>> data = load()
    >>> data.x_train.shape, data.x_test.shape
    ((1437, 1, 8, 8), (360, 1, 8, 8))
    >>> np.bincount(data.y_test)
    array([36, 36, 35, 37, 36, 37, 36, 36, 35, 36])
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(dtype)[:, None]  # (1797, 1, 8, 8)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, stratify=y, random_state=seed
    )
    return Digits(x_train, y_train, x_test, y_test)


def network(*, rng=0, dtype=np.float64, method="auto"):
    """The all-convolutional classifier: 8x8 digit in, 10 logits out.

    Parameters
    ----------
    rng : None, int or numpy.random.Generator
        Seeds the initial weights (PyTorch's default initialisation).
    dtype : numpy float dtype
    method : {"auto", "strided", "wide", "tutorial", "reference", "winograd"}
        How the layers compute (``"auto"``: each pass as :func:`convbook.engine.choose`
        picks); ``"winograd"`` (stride 1 only) applies to the first layer, the others
        then use ``"strided"``.

    Examples
    --------
    >>> net = network()
    >>> net(np.zeros((5, 1, 8, 8))).shape
    (5, 10)
    >>> sum(p.size for p in net.parameters())
    9930
    """
    rng = np.random.default_rng(rng)
    other = "strided" if method == "winograd" else method
    return Sequential(
        # the data needs no gradient: the first layer skips dx
        Conv2D(1, 16, 3, 1, 1, method=method, rng=rng, dtype=dtype, input_grad=False),
        ReLU(),  # (N, 16, 8, 8)
        Conv2D(16, 32, 3, 2, 1, method=other, rng=rng, dtype=dtype),
        ReLU(),  # (N, 32, 4, 4): stride 2 halves the map, no pooling
        Conv2D(32, 10, 4, method=other, rng=rng, dtype=dtype),  # (N, 10, 1, 1)
        Flatten(),  # (N, 10): the kernel covered the whole map, one logit per digit
    )


def batches(n, *, batch_size=BATCH_SIZE, epochs=EPOCHS, seed=0):
    """The minibatch order: each epoch a seeded shuffle of ``range(n)``, cut in batches.

    Returns a list (one per epoch) of lists of index arrays; the last batch of an epoch
    is smaller when ``batch_size`` does not divide ``n``.

    Examples
    --------
    >>> [b.tolist() for b in batches(5, batch_size=2, epochs=1, seed=0)[0]]
    [[2, 4], [3, 0], [1]]
    """
    rng = np.random.default_rng(seed)
    order = []
    for _ in range(epochs):
        perm = rng.permutation(n)
        order.append([perm[k : k + batch_size] for k in range(0, n, batch_size)])
    return order


def train_step(net, opt, x, y):
    """One step: forward, loss, backward, update. Returns the minibatch's loss."""
    logits = net(x)  # (N, 10)
    loss, dlogits = softmax_cross_entropy(logits, y)
    net.backward(dlogits)
    opt.step(net.grads())
    return loss


def predict(net, x):
    """The predicted digit of every image: the index of the largest logit.

    Works for a convbook network and for its PyTorch twin.
    """
    if hasattr(net, "state_dict"):  # a torch.nn.Module
        import torch

        with torch.no_grad():
            return net(torch.from_numpy(x)).argmax(dim=1).numpy()
    return net(x).argmax(axis=1)


def accuracy(net, x, y):
    """The fraction of images whose digit ``net`` predicts right."""
    return float(np.mean(predict(net, x) == y))


def fit(
    step,
    net,
    data,
    *,
    epochs=EPOCHS,
    batch_size=BATCH_SIZE,
    seed=0,
    progress=False,
    on_epoch=None,
):
    """The training loop, for any ``step(x, y) -> loss`` (convbook's or PyTorch's).

    Runs ``step`` over the minibatches of :func:`batches` and measures the test accuracy
    of ``net`` after every epoch.

    Parameters
    ----------
    step : callable
        ``step(x_batch, y_batch)`` trains on one minibatch and returns its loss.
    net : the network ``step`` trains (for the test accuracy).
    data : Digits
    epochs, batch_size, seed :
        The minibatch order (:func:`batches`).
    progress : bool
        Show a tqdm bar: the notebook widget in a Jupyter kernel, text elsewhere.
    on_epoch : callable, optional
        Called with the history after every epoch (e.g. :class:`LiveCurves`).

    Returns
    -------
    history : dict
        ``"loss"``: every step's minibatch loss; ``"test_accuracy"``: one per epoch;
        ``"steps_per_epoch"``.
    """
    order = batches(len(data.y_train), batch_size=batch_size, epochs=epochs, seed=seed)
    history = {"loss": [], "test_accuracy": [], "steps_per_epoch": len(order[0])}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(map(len, order)), desc="training", unit="step")
    for epoch in order:
        for idx in epoch:
            history["loss"].append(step(data.x_train[idx], data.y_train[idx]))
        history["test_accuracy"].append(accuracy(net, data.x_test, data.y_test))
        if bar is not None:
            bar.update(len(epoch))
            bar.set_postfix(
                loss=f"{history['loss'][-1]:.3g}",
                test_accuracy=f"{history['test_accuracy'][-1]:.3f}",
            )
        if on_epoch is not None:
            on_epoch(history)
    if bar is not None:
        bar.close()
    return history


def train(net, data, *, lr=LR, momentum=MOMENTUM, **kwargs):
    """Train a convbook network with SGD and momentum; see :func:`fit` for the rest."""
    opt = SGD(net.parameters(), lr=lr, momentum=momentum)
    return fit(lambda x, y: train_step(net, opt, x, y), net, data, **kwargs)


def torch_step(model, opt):
    """:func:`train_step` in PyTorch, as a ``step(x, y) -> loss`` for :func:`fit`."""
    import torch
    import torch.nn.functional as F

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y))
        loss.backward()
        opt.step()
        return loss.item()

    return step


def train_torch(model, data, *, lr=LR, momentum=MOMENTUM, **kwargs):
    """:func:`train` for a PyTorch model (``torch.optim.SGD``, ``F.cross_entropy``)."""
    import torch

    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    return fit(torch_step(model, opt), model, data, **kwargs)


def epoch_fns(
    dtype=np.float32,
    *,
    method="auto",
    batch_size=BATCH_SIZE,
    lr=LR,
    momentum=MOMENTUM,
    seed=0,
):
    """Two callables that each train one epoch: convbook's network and its PyTorch twin.

    For the benchmark: both start from the same initial weights and run the same
    minibatch order (the same one at every call; training goes on from where the last
    call left it). Each returns the array of its steps' losses. The caller sets
    PyTorch's threads (``torch.set_num_threads``) and the BLAS's.

    Parameters
    ----------
    dtype : numpy float dtype
    method : str
        The convbook network's method (see :func:`network`).
    batch_size, lr, momentum, seed :
        As for :func:`train`.

    Returns
    -------
    convbook_epoch, torch_epoch : callable
    """
    import torch

    data = load(dtype=dtype)
    net = network(rng=seed, dtype=dtype, method=method)
    model = to_torch(net)
    (order,) = batches(len(data.y_train), batch_size=batch_size, epochs=1, seed=seed)
    xs = [data.x_train[idx] for idx in order]
    ys = [data.y_train[idx] for idx in order]
    opt = SGD(net.parameters(), lr=lr, momentum=momentum)
    step_t = torch_step(
        model, torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    )

    def convbook_epoch():
        return np.array(
            [train_step(net, opt, x, y) for x, y in zip(xs, ys, strict=True)]
        )

    def torch_epoch():
        return np.array([step_t(x, y) for x, y in zip(xs, ys, strict=True)])

    return convbook_epoch, torch_epoch


def confusion_matrix(y_true, y_pred, k=10):
    """``counts[t, p]``: how many images of digit ``t`` were predicted ``p``.

    Examples
    --------
    >>> confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 0]), k=2)
    array([[1, 0],
           [1, 1]])
    """
    return np.bincount(
        k * np.asarray(y_true) + np.asarray(y_pred), minlength=k * k
    ).reshape(k, k)


def feature_maps(net, image):
    """What each layer of ``net`` makes of one ``(1, 8, 8)`` image.

    Returns ``[image, out_0, out_1, ...]``: the input, then the output of ``net[k]`` for
    this image (``(C, H, W)`` maps, or the ``(10,)`` logits at the end).

    Examples
    --------
    >>> [a.shape for a in feature_maps(network(), np.zeros((1, 8, 8)))]
    [(1, 8, 8), (16, 8, 8), (16, 8, 8), (32, 4, 4), (32, 4, 4), (10, 1, 1), (10,)]
    """
    x = image[None]  # (1, 1, 8, 8)
    maps = [image]
    for layer in net.layers:
        x = layer(x)
        maps.append(x[0])
    return maps


class LiveCurves:
    """An ``on_epoch`` callback: :func:`plot_history` redrawn in place after each epoch.

    In a Jupyter kernel the figure grows as the network trains; the last drawing, made
    from the finished history, is what stays in the page (the static figure of the built
    book). ``figure`` holds it.
    """

    def __init__(self, epochs=EPOCHS):
        self.epochs = epochs
        self.figure = None
        self._handle = None

    def __call__(self, history):
        import matplotlib.pyplot as plt
        from IPython.display import display

        self.figure = plot_history(history, epochs=self.epochs)
        plt.close(
            self.figure
        )  # shown by the display below, not again at the cell's end
        if self._handle is None:
            self._handle = display(self.figure, display_id=True)
        else:
            self._handle.update(self.figure)


def _grid(n, ncols, size, **kwargs):
    import matplotlib.pyplot as plt

    nrows = -(-n // ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(size * ncols, size * nrows * 1.15),
        squeeze=False,
        **kwargs,
    )
    for ax in axes.flat:
        ax.set_axis_off()
    return fig, axes.flat


def plot_digits(images, labels, predicted=None, *, ncols=10):
    """Digits in a grid, titled with their label, or ``label -> prediction``."""
    fig, axes = _grid(len(images), min(ncols, max(len(images), 1)), 0.9)
    for k, (ax, image) in enumerate(zip(axes, images, strict=False)):
        ax.imshow(image.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        if predicted is None:
            ax.set_title(f"{labels[k]}", fontsize=9)
        else:
            ax.set_title(f"{labels[k]} → {predicted[k]}", fontsize=9, color="#D55E00")
    return fig


def plot_history(history, *, epochs=None):
    """The loss of every step and its mean per epoch; the test accuracy per epoch."""
    import matplotlib.pyplot as plt

    from .plotting import PALETTE

    per = history["steps_per_epoch"]
    loss = np.asarray(history["loss"])
    acc = np.asarray(history["test_accuracy"])
    epochs = epochs or max(len(acc), 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(8, 3))
    # fixed margins, not a constrained layout: redrawn every epoch, it must draw fast
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.16, top=0.9, wspace=0.22)
    ax_loss.plot(
        np.arange(1, len(loss) + 1) / per,
        loss,
        color=PALETTE["gradient"],
        lw=0.6,
        alpha=0.5,
        label="each step",
    )
    done = len(loss) // per
    means = loss[: done * per].reshape(done, per).mean(axis=1)
    ax_loss.plot(
        np.arange(1, done + 1),
        means,
        "o-",
        color=PALETTE["highlight"],
        ms=3,
        label="mean of the epoch",
    )
    ax_loss.set(yscale="log", xlim=(0, epochs), xlabel="epoch", title="training loss")
    ax_loss.legend(fontsize=8)
    ax_acc.plot(
        np.arange(1, len(acc) + 1), 100 * acc, "o-", color=PALETTE["output"], ms=3
    )
    ax_acc.set(
        xlim=(0, epochs),
        ylim=(80, 100),
        xlabel="epoch",
        ylabel="%",
        title="test accuracy",
    )
    ax_acc.grid(alpha=0.3)
    return fig


def plot_filters(w):
    """The first layer's ``(F, 1, KH, KW)`` filters, one image each (blue < 0 < red)."""
    lim = np.abs(w).max()
    fig, axes = _grid(len(w), 8, 0.9)
    for f, ax in zip(range(len(w)), axes, strict=False):
        ax.imshow(w[f, 0], cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(f"filter {f}", fontsize=8)
    return fig


def plot_feature_maps(net, image, label=None):
    """One digit on its way through ``net``: the image, each ReLU's maps, the logits."""
    import matplotlib.pyplot as plt

    from .plotting import PALETTE

    maps = feature_maps(net, image)
    # the maps after each ReLU, titled with the convolution before it
    stages = [
        (net[k - 1], maps[k + 1])
        for k, layer in enumerate(net.layers)
        if isinstance(layer, ReLU)
    ]
    logits = maps[-1]
    fig = plt.figure(figsize=(9, 6), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[1, 3.2])
    ax_in, ax_out = left.subplots(2, 1, height_ratios=[1, 1.2])
    ax_in.imshow(image[0], cmap="gray_r")
    ax_in.set_title("input" if label is None else f"input (a {label})", fontsize=9)
    ax_in.set_axis_off()
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    ax_out.barh(np.arange(10), probs, color=PALETTE["output"])
    ax_out.set(yticks=range(10), xlim=(0, 1), xlabel="softmax of the 10 logits")
    ax_out.set_title("the network's answer", fontsize=9)
    ax_out.invert_yaxis()
    rows = right.subfigures(len(stages), 1, height_ratios=[len(v) for _, v in stages])
    for row, (conv, v) in zip(rows, stages, strict=True):
        (kh, kw), (sh, _) = conv.kernel_size, conv.stride
        row.suptitle(
            f"{kh}x{kw} conv, stride {sh}, then ReLU: "
            f"{v.shape[0]} maps of {v.shape[1]}x{v.shape[2]}",
            fontsize=9,
        )
        for c, ax in enumerate(row.subplots(len(v) // 8, 8).flat):
            ax.imshow(v[c], cmap="magma", vmin=0)
            ax.set_axis_off()
    return fig


def plot_confusion(y_true, y_pred, ax=None):
    """The confusion matrix, counts written in; the diagonal is the right answers."""
    import matplotlib.pyplot as plt

    counts = confusion_matrix(y_true, y_pred)
    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 4.2), layout="constrained")
    ax.imshow(np.log1p(counts), cmap="Greens")
    for (t, p), c in np.ndenumerate(counts):
        if c:
            ax.text(
                p,
                t,
                c,
                ha="center",
                va="center",
                fontsize=8,
                color="white" if t == p else "black",
            )
    ax.set(
        xticks=range(10),
        yticks=range(10),
        xlabel="predicted",
        ylabel="true digit",
        title=f"test set: {np.trace(counts)} of {counts.sum()} right",
    )
    return ax.figure

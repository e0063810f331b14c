"""The digits experiment: the split, the network, the seeded minibatch order, a short
run step for step against PyTorch, the benchmark's epoch functions, and the figures."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

pytest.importorskip("sklearn")

from convbook import digits as D  # noqa: E402
from convbook.layers import Conv2D  # noqa: E402
from convbook.nn import ReLU, to_torch  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return D.load()


def test_load_split(data):
    assert data.x_train.shape == (1437, 1, 8, 8) and data.x_test.shape == (360, 1, 8, 8)
    assert data.x_train.dtype == np.float64 and data.y_train.dtype == np.int64
    assert data.x_train.min() == 0.0 and data.x_train.max() == 1.0
    # stratified: every digit is 20% of its class in the test set, to one image
    total = np.bincount(data.y_train) + np.bincount(data.y_test)
    assert total.sum() == 1797
    assert np.all(np.abs(np.bincount(data.y_test) - 0.2 * total) < 1)
    # seeded: the same split again, another with another seed
    again = D.load()
    np.testing.assert_array_equal(again.x_test, data.x_test)
    assert not np.array_equal(D.load(seed=1).y_test, data.y_test)
    assert D.load(dtype=np.float32).x_train.dtype == np.float32


def test_network_shapes_and_first_layer(data):
    net = D.network()
    assert [type(layer).__name__ for layer in net] == [
        "Conv2D", "ReLU", "Conv2D", "ReLU", "Conv2D", "Flatten",
    ]  # fmt: skip
    first, second, head = net[0], net[2], net[4]
    assert first.input_grad is False and second.input_grad and head.input_grad
    assert second.stride == (2, 2)  # stride 2 in place of pooling
    assert head.output_shape((7, 32, 4, 4)) == (
        7,
        10,
        1,
        1,
    )  # the kernel covers the map
    assert net(data.x_test[:7]).shape == (7, 10)
    assert sum(p.size for p in net.parameters()) == 160 + 4640 + 5130
    wino = D.network(method="winograd", dtype=np.float32)
    assert [c.method for c in wino if isinstance(c, Conv2D)] == [
        "winograd", "strided", "strided",
    ]  # fmt: skip
    assert all(p.dtype == np.float32 for p in wino.parameters())
    # seeded: the same weights again
    np.testing.assert_array_equal(D.network(rng=3)[2].w, D.network(rng=3)[2].w)


def test_batches_are_seeded_permutations():
    order = D.batches(100, batch_size=32, epochs=3, seed=5)
    assert len(order) == 3 and [len(b) for b in order[0]] == [32, 32, 32, 4]
    for epoch in order:
        assert sorted(np.concatenate(epoch).tolist()) == list(range(100))
    assert not np.array_equal(order[0][0], order[1][0])  # a new shuffle each epoch
    again = D.batches(100, batch_size=32, epochs=3, seed=5)
    for e, e2 in zip(order, again, strict=True):
        for b, b2 in zip(e, e2, strict=True):
            np.testing.assert_array_equal(b, b2)


def test_training_lowers_the_loss_and_fit_reports(data):
    seen = []
    net = D.network()
    history = D.train(
        net, data, epochs=2, on_epoch=lambda h: seen.append(len(h["loss"]))
    )
    per = history["steps_per_epoch"]
    assert per == 45 and len(history["loss"]) == 2 * per and seen == [per, 2 * per]
    assert np.mean(history["loss"][-per:]) < 0.5 * np.mean(history["loss"][:per])
    assert len(history["test_accuracy"]) == 2 and history["test_accuracy"][-1] > 0.85
    assert history["test_accuracy"][-1] == D.accuracy(net, data.x_test, data.y_test)


def test_progress_bar_outside_a_notebook(data, capsys):
    D.train(D.network(), data, epochs=1, progress=True)
    err = capsys.readouterr().err
    assert "training" in err and "45/45" in err  # tqdm's plain text bar


def test_same_run_as_pytorch_step_for_step(data):
    torch = pytest.importorskip("torch")
    net = D.network(rng=1)
    twin = to_torch(net)
    ours = D.train(net, data, epochs=2, seed=1)
    theirs = D.train_torch(twin, data, epochs=2, seed=1)
    assert np.max(np.abs(np.subtract(ours["loss"], theirs["loss"]))) <= 1e-12
    for p, t in zip(net.parameters(), twin.parameters(), strict=True):
        assert isinstance(t, torch.nn.Parameter)
        assert np.max(np.abs(p - t.detach().numpy())) <= 1e-12
    assert ours["test_accuracy"] == theirs["test_accuracy"]
    np.testing.assert_array_equal(
        D.predict(net, data.x_test), D.predict(twin, data.x_test)
    )


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-4)])
def test_epoch_fns(dtype, tol):
    torch = pytest.importorskip("torch")
    convbook_epoch, torch_epoch = D.epoch_fns(dtype)
    first, first_t = convbook_epoch(), torch_epoch()
    assert first.shape == first_t.shape == (45,)
    np.testing.assert_allclose(first, first_t, rtol=tol, atol=tol)
    # the next call goes on training, from where the last one stopped
    second, second_t = convbook_epoch(), torch_epoch()
    assert second.mean() < first.mean()
    # float32 rounding grows over the steps: the same run, not the same bits
    assert abs(second.mean() - second_t.mean()) < 1e3 * tol * second_t.mean()
    assert torch.get_default_dtype() == torch.float32  # no global change


def test_epoch_fns_method():
    pytest.importorskip("torch")
    convbook_epoch, _ = D.epoch_fns(np.float32, method="tutorial")
    assert convbook_epoch().dtype == np.float64  # the losses, as Python floats


def test_confusion_matrix():
    y = np.array([0, 1, 2, 2, 9])
    p = np.array([0, 1, 2, 1, 9])
    counts = D.confusion_matrix(y, p)
    assert counts.shape == (10, 10) and counts.sum() == 5 and np.trace(counts) == 4
    assert counts[2, 1] == 1


def test_feature_maps_follow_the_network(data):
    net = D.network()
    maps = D.feature_maps(net, data.x_test[0])
    np.testing.assert_array_equal(maps[-1], net(data.x_test[:1])[0])
    assert np.array_equal(maps[2], np.maximum(maps[1], 0))  # after the ReLU
    assert isinstance(net[1], ReLU)


def test_figures(data):
    net = D.network()
    history = D.train(net, data, epochs=1)
    pred = D.predict(net, data.x_test)
    wrong = np.flatnonzero(pred != data.y_test)
    figures = {
        "history": D.plot_history(history, epochs=3),
        "filters": D.plot_filters(net[0].w),
        "maps": D.plot_feature_maps(net, data.x_test[0], label=data.y_test[0]),
        "confusion": D.plot_confusion(data.y_test, pred),
        "wrong": D.plot_digits(data.x_test[wrong], data.y_test[wrong], pred[wrong]),
        "digits": D.plot_digits(data.x_train[:20], data.y_train[:20]),
    }
    for name, fig in figures.items():
        assert isinstance(fig, Figure), name
    # the loss curve holds every step; the accuracy panel every epoch
    ax_loss, ax_acc = figures["history"].axes
    np.testing.assert_array_equal(ax_loss.lines[0].get_ydata(), history["loss"])
    np.testing.assert_array_equal(
        ax_acc.lines[0].get_ydata(), 100 * np.array(history["test_accuracy"])
    )
    assert ax_loss.get_xlim() == (0, 3)
    # 16 filters drawn, and the confusion matrix says how many are right
    assert sum(bool(ax.images) for ax in figures["filters"].axes) == 16
    right = int((pred == data.y_test).sum())
    assert figures["confusion"].axes[0].get_title() == f"test set: {right} of 360 right"
    titles = [ax.get_title() for ax in figures["wrong"].axes if ax.images]
    assert titles == [
        f"{t} → {p}" for t, p in zip(data.y_test[wrong], pred[wrong], strict=True)
    ]
    plt.close("all")


def test_live_curves_redraw_one_display(data, monkeypatch):
    pytest.importorskip("IPython")
    import IPython.display

    shown = []

    class Handle:
        def update(self, obj):
            shown.append(("update", obj))

    def display(obj, display_id=False):
        shown.append(("display", obj))
        return Handle()

    monkeypatch.setattr(IPython.display, "display", display)
    live = D.LiveCurves(epochs=2)
    history = D.train(D.network(), data, epochs=2, on_epoch=live)
    assert [kind for kind, _ in shown] == ["display", "update"]
    assert shown[-1][1] is live.figure
    # the last drawing is the whole run: the static figure of the built page
    np.testing.assert_array_equal(
        live.figure.axes[0].lines[0].get_ydata(), history["loss"]
    )
    assert not plt.get_fignums()  # closed: no second copy at the cell's end

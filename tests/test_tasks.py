"""The built-in tasks' read-out and loss, as a training loop uses them, against finite
differences of the loss through the GRU and the read-out layer."""

import numpy as np
import pytest

import eigengru
from eigengru.linear import Linear
from eigengru.tasks import TASKS


def task_loss(task, gru, head, batch):
    out, h_n = gru(batch.x)
    return task.loss(head(task.readout(out, h_n)), batch.target)[0]


@pytest.mark.parametrize("name", sorted(TASKS))
def test_task_gradients_match_finite_differences(name):
    task = TASKS[name](13, seed=3)
    gru = eigengru.GRU(task.input_size, 6, num_layers=2, dtype=np.float64, seed=4)
    head = Linear(6, task.outputs, dtype=np.float64, seed=5)
    batch = task.batch(3)
    batch.x = batch.x.astype(np.float64)

    out, h_n = gru.forward(batch.x, train=True)
    loss, grad = task.loss(head(task.readout(out, h_n)), batch.target)
    assert loss == pytest.approx(task_loss(task, gru, head, batch))
    gru.backward(*task.readout_gradients(out, h_n, head.backward(grad)))

    rng = np.random.default_rng(0)
    for param_name, param in gru.parameters():
        for index in [tuple(rng.integers(0, n) for n in param.shape) for _ in range(3)]:
            saved = param[index]
            param[index] = saved + 1e-6
            up = task_loss(task, gru, head, batch)
            param[index] = saved - 1e-6
            down = task_loss(task, gru, head, batch)
            param[index] = saved
            numeric = (up - down) / 2e-6
            assert gru.grads[param_name][index] == pytest.approx(numeric, rel=1e-5, abs=1e-9), (
                name, param_name, index)


def test_task_arguments_are_checked():
    with pytest.raises(ValueError, match="seq_len: the adding problem needs at least 2 steps"):
        TASKS["adding"](1)
    with pytest.raises(ValueError, match="seq_len: the copy task needs at least 11 steps"):
        TASKS["copy"](10)

"""Training-trajectory influence: cost of recording and of self-influence, in the same run.

Full size (the issue's acceptance setting): n = 10 000 rows, 100 features, 10 classes, an MLP
100-256-256-10 (94 218 parameters) trained by skorch with Adam, batch 128, 20 epochs. Rows:

* ``fit, plain`` -- ``net.fit`` without recording;
* ``fit, recording`` -- the same fit with :class:`TrajectoryRecorder` (epoch checkpoints);
* ``self-influence, TracIn`` -- :func:`skinfluence.influence.trajectory.tracin` on the recorded
  checkpoints (one pass of per-row gradients per checkpoint);
* ``self-influence, f-INE`` -- :func:`skinfluence.influence.trajectory.fine` (two passes per
  checkpoint: main run and auxiliary twin; the twin's training is not counted);
* ``self-influence, TracIn, projection_dim=256`` -- gradients projected to 256 dimensions
  (projection saves memory where gradients are stored; here they never are, so it only adds
  the ``n p k`` product).

Run: ``python benchmarks/bench_trajectory.py`` (full size: many minutes on a CPU), or
``python benchmarks/bench_trajectory.py --quick`` (n = 2 000, 100-64-64-10, 5 epochs; under a
minute).
"""

import argparse
import time

import numpy as np
import torch
from sklearn.datasets import make_classification
from skorch import NeuralNetClassifier

from skinfluence.backend import make_objective
from skinfluence.backend.skorch_recorder import TrajectoryRecorder
from skinfluence.backend.trajectory import random_projection
from skinfluence.influence.trajectory import draw_batches, fine, tracin


class MLP(torch.nn.Module):
    def __init__(self, hidden=256):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(100, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, hidden),
            torch.nn.ReLU(), torch.nn.Linear(hidden, 10))

    def forward(self, X):
        return self.layers(X)


def timed(fn):
    """Result, then (wall, CPU) seconds: CPU time stays meaningful on a shared machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, (time.perf_counter() - wall, time.process_time() - cpu)


def main(quick):
    n, hidden, epochs = (2000, 64, 5) if quick else (10_000, 256, 20)
    X, y = make_classification(n_samples=n, n_features=100, n_informative=30, n_classes=10,
                               random_state=0)
    X = X.astype(np.float32)

    def net(seed, callbacks=None):
        torch.manual_seed(seed)
        return NeuralNetClassifier(MLP, module__hidden=hidden, criterion=torch.nn.CrossEntropyLoss,
                                   optimizer=torch.optim.Adam, lr=1e-3, batch_size=128,
                                   max_epochs=epochs, iterator_train__shuffle=True,
                                   train_split=None, verbose=0, callbacks=callbacks)

    net(0).set_params(max_epochs=1).fit(X, y)  # warm-up: lazy imports and allocations
    recorder, twin_recorder = TrajectoryRecorder(), TrajectoryRecorder()
    model, recording = timed(lambda: net(0, [recorder]).fit(X, y))
    _, plain = timed(lambda: net(0).fit(X, y))
    net(1, [twin_recorder]).fit(X, y)
    objective = make_objective(model, X, y, device="cpu", check_convergence=False)
    main_run, twin = recorder.trajectory_, twin_recorder.trajectory_
    batches = draw_batches(np.random.default_rng(0), n, 128, len(main_run))
    projection = random_projection(objective.n_params, 256, 0, "cpu", torch.float64)
    _, t_tracin = timed(lambda: tracin(objective, main_run))
    _, t_fine = timed(lambda: fine(objective, main_run, twin, batches))
    _, t_proj = timed(lambda: tracin(objective, main_run, projection=projection))
    print(f"n = {n}, parameters = {objective.n_params}, epochs = {epochs}, float64 on the CPU, "
          f"{torch.get_num_threads()} threads")
    print("| step | wall seconds | CPU seconds |")
    print("| --- | --- | --- |")
    for name, seconds in [("fit, plain", plain), ("fit, recording", recording),
                          ("self-influence, TracIn", t_tracin),
                          ("self-influence, f-INE", t_fine),
                          ("self-influence, TracIn, projection_dim=256", t_proj)]:
        print(f"| {name} | {seconds[0]:.1f} | {seconds[1]:.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (under a minute)")
    main(parser.parse_args().quick)

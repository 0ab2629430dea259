"""skinfluence side by side with other influence libraries, on the same problem and objective.

L2 logistic regression without intercept (so that every parameter carries the same penalty,
which the peers can express), ``C = 1``, n training rows, d = 100, influence of every training
row on 50 test rows. Implementations, each in its own fresh process, cold (first call, imports
excluded) and warm (best of 3):

* numpy: explicit per-row gradients, Hessian, solve (``bench_influence.numpy_influence``);
* skinfluence: ``skinfluence.influence``;
* captum ``NaiveInfluenceFunction`` (when installed): explicit Hessian of the summed data loss
  plus ``hessian_reg = 1 / C`` (the penalty), full rank (``projection_dim = d``);
* pyDVL ``DirectInfluence`` (when installed).

Every answer is compared with numpy's (Pearson r; a peer's opposite sign convention is
reported, and r is taken after undoing it). Neither peer is a dependency of skinfluence.

Run: ``python benchmarks/bench_peers.py [--n 50000]``
"""

import argparse
import importlib.util
import os
import pickle
import subprocess
import sys
import tempfile
import time

import numpy as np
from bench_influence import D, make_data, numpy_influence

PEERS = ("numpy", "skinfluence", "captum", "pydvl")


def _captum_call(model, X, y, Xt, yt, workdir):
    import torch
    from captum.influence import NaiveInfluenceFunction
    from torch.utils.data import DataLoader, TensorDataset

    net = _linear_net(model)
    checkpoint = os.path.join(workdir, "captum.pt")
    torch.save(net.state_dict(), checkpoint)
    train = DataLoader(TensorDataset(torch.as_tensor(X), torch.as_tensor(y, dtype=torch.float64)
                                     .unsqueeze(1)), batch_size=len(X))
    test = (torch.as_tensor(Xt), torch.as_tensor(yt, dtype=torch.float64).unsqueeze(1))

    def run():
        influence = NaiveInfluenceFunction(
            net, train, checkpoint, loss_fn=torch.nn.BCEWithLogitsLoss(reduction="sum"),
            sample_wise_grads_per_batch=True, projection_dim=D, hessian_reg=1.0 / model.C,
            hessian_inverse_tol=0.0)
        return influence.influence(test).T.detach().numpy()  # (n_train, n_test)

    return run


def _pydvl_call(model, X, y, Xt, yt, workdir):
    """pyDVL's Hessian is of the *mean* data loss: its regularisation 1 / (C n) is the penalty."""
    import torch
    import torch.nn.functional as F
    from pydvl.influence import InfluenceMode
    from pydvl.influence.torch import DirectInfluence
    from torch.utils.data import DataLoader, TensorDataset

    net = _linear_net(model)
    tensors = [torch.as_tensor(a, dtype=torch.float64).reshape(len(a), -1)
               for a in (X, y, Xt, yt)]
    train = DataLoader(TensorDataset(*tensors[:2]), batch_size=len(X))

    def run():
        influence = DirectInfluence(net, F.binary_cross_entropy_with_logits,
                                    regularization=1.0 / (model.C * len(X))).fit(train)
        out = influence.influences(tensors[2], tensors[3], tensors[0], tensors[1],
                                   mode=InfluenceMode.Up)
        return out.T.detach().numpy()

    return run


def _linear_net(model):
    """A torch ``Linear`` layer (no bias) holding the fitted coefficients, in float64."""
    import torch

    net = torch.nn.Linear(D, 1, bias=False).double()
    with torch.no_grad():
        net.weight.copy_(torch.as_tensor(model.coef_))
    return net


def make_call(which, model, X, y, Xt, yt, workdir):
    if which == "numpy":
        return lambda: numpy_influence(model, X, y, Xt, yt)
    if which == "skinfluence":
        import skinfluence

        return lambda: skinfluence.influence(model, X, y, Xt, yt, device="cpu")
    if which == "captum":
        return _captum_call(model, X, y, Xt, yt, workdir)
    return _pydvl_call(model, X, y, Xt, yt, workdir)


def run_one(n, which, workdir, repeat):
    X, y, Xt, yt = make_data(n, np.random.default_rng(n))
    with open(os.path.join(workdir, "model.pkl"), "rb") as f:
        model = pickle.load(f)
    call = make_call(which, model, X, y, Xt, yt, workdir)
    start = time.perf_counter()
    out = call()
    cold = time.perf_counter() - start
    warm = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        out = call()
        warm = min(warm, time.perf_counter() - start)
    np.save(os.path.join(workdir, f"{which}.npy"), np.asarray(out))
    print(cold, warm)


def installed(which):
    return which in ("numpy", "skinfluence") or importlib.util.find_spec(which) is not None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return run_one(args.n, args.one[0], args.one[1], args.repeat)

    from sklearn.linear_model import LogisticRegression

    X, y, _, _ = make_data(args.n, np.random.default_rng(args.n))
    model = LogisticRegression(C=1.0, fit_intercept=False, solver="newton-cholesky",
                               tol=1e-10).fit(X, y)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root}
    print(f"n={args.n}, d={D}, 50 test rows, L2 logistic regression (C=1, no intercept); "
          f"cold = first call in a fresh process (imports excluded), warm = best of "
          f"{args.repeat}")
    print(f"{'library':>12} {'cold s':>8} {'warm s':>8} {'warm / numpy':>13} {'r vs numpy':>11}")
    with tempfile.TemporaryDirectory() as workdir:
        with open(os.path.join(workdir, "model.pkl"), "wb") as f:
            pickle.dump(model, f)
        reference = None
        for which in PEERS:
            if not installed(which):
                print(f"{which:>12}  skipped: not installed")
                continue
            proc = subprocess.run(
                [sys.executable, __file__, "--n", str(args.n), "--repeat", str(args.repeat),
                 "--one", which, workdir], check=False, capture_output=True, text=True, env=env)
            if proc.returncode:
                print(f"{which:>12}  failed: {proc.stderr.strip().splitlines()[-1]}")
                continue
            cold, warm = map(float, proc.stdout.split()[-2:])
            out = np.load(os.path.join(workdir, f"{which}.npy"))
            if reference is None:
                reference = (warm, out)
            r = np.corrcoef(out.ravel(), reference[1].ravel())[0, 1]
            flipped = " (opposite sign)" if r < 0 else ""
            print(f"{which:>12} {cold:>8.3f} {warm:>8.3f} {warm / reference[0]:>13.2f} "
                  f"{abs(r):>11.6f}{flipped}", flush=True)


if __name__ == "__main__":
    main()

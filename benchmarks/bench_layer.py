"""TT layers: forward against forward + backward, and the per-call cost on tiny shapes.

Run from the repository root::

    python benchmarks/bench_layer.py                      # all cases
    python benchmarks/bench_layer.py --quick              # fewer repeats
    python benchmarks/bench_layer.py --compare /tmp/old   # also time another copy of the
                                                          # package, interleaved with this one

``--compare DIR`` loads ``DIR/tensortrain`` under another name (for example the last commit,
``mkdir /tmp/old && git archive HEAD tensortrain | tar -x -C /tmp/old``) and times it in the
same rounds as the working tree, so that both see the same background load.

Cases
-----
* ``fc6``: ``TTLinear(25088, 4096)`` with input modes (2, 7, 8, 8, 7, 4), output modes 4^6,
  TT-ranks 4, float32, batch 100: ``X @ W.T``, ``layer.forward`` and ``layer.forward`` +
  ``layer.backward`` (which returns ``dx`` and accumulates the core and bias gradients).
* ``1024``: ``TTLinear(1024, 1024)``, modes (4, 8, 8, 4) on both sides, rank 8, batch 256.
* ``mnist_r8``, ``mnist_r2``: the TT layers of the training benchmark
  (``benchmarks/bench_mnist.py``), 1024 x 1024 with modes (4, 8, 8, 4), ranks 8 and 2,
  batch 100.  There they are the network's first layer, whose input gradient is never asked
  for, so these cases (like fc6 and 1024) also time a second layer with the same cores used
  that way (``backward(dy, need_input_grad=False)``, which makes its forward pass plan for a
  backward pass without that gradient).
* ``tiny``: modes (2,)^6 on both sides, rank 2, float64, batch 1, 8 and 64.  The per-call
  cost: ``X @ W.T`` and ``layer.forward`` + ``layer.backward`` against a *hand-written* NumPy
  loop doing the same arithmetic (the same plan, the same GEMMs, with every shape worked out
  beforehand: the floor for Python code), and against one NumPy product with the dense
  matrix.

With ``--device cupy`` everything runs on the GPU (timed with a device synchronization after
each call), and the ``fc6`` and ``1024`` cases also time a dense layer of the same sizes on
the device (``X @ Wd.T + b``, and its forward + backward: ``dy @ Wd``, ``dy^T X``,
``sum(dy)``), the reference a TT layer has to beat there.

Times are the best of interleaved samples (see ``_common.time_many``); the 'bg cpu' column
is the share of the CPUs other processes used meanwhile.  Nothing is asserted.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


# ---- the hand-written reference ---------------------------------------------------------------
def _prefix(v):
    out = [1]
    for x in v:
        out.append(out[-1] * x)
    return out


def hand_program(W, B, order):
    """Per step ``(lo, hi, P, K, Q, rows, axes, merges)`` of ``X @ W.T`` along the blocks
    ``order`` (a plan's ``order``), worked out once (independently of
    ``tensortrain.contraction``)."""
    m, n, r = W.row_modes, W.col_modes, W.ranks
    mpre, npre = _prefix(m), _prefix(n)
    nsuf = [npre[-1] // npre[k] for k in range(len(n) + 1)]
    steps, iv = [], None
    for lo, hi in order:
        M, Nb = mpre[hi + 1] // mpre[lo], npre[hi + 1] // npre[lo]
        if iv is None:
            side, P, K, Q, rows, iv = "first", B * npre[lo], Nb, nsuf[hi + 1], r[lo] * M * r[hi + 1], (lo, hi)
        elif lo == iv[1] + 1:
            i, j = iv
            side, P, K, Q, rows = ("right", B * npre[i] * r[i] * (mpre[j + 1] // mpre[i]),
                                   r[lo] * Nb, nsuf[hi + 1], M * r[hi + 1])
            iv = (i, hi)
        else:
            i, j = iv
            side, P, K, Q, rows = ("left", B * npre[lo], Nb * r[hi + 1],
                                   (mpre[j + 1] // mpre[i]) * r[j + 1] * nsuf[j + 1], r[lo] * M)
            iv = (lo, j)
        # axes of (r, M, N, r') or of the 6-D last merge (r, Ma, Na, m, n, r'): (new, contracted)
        axes4 = {"first": (0, 1, 3, 2), "right": (1, 3, 0, 2), "left": (0, 1, 2, 3)}[side]
        axes6 = {"first": (0, 1, 3, 5, 2, 4), "right": (1, 3, 5, 0, 2, 4),
                 "left": (0, 1, 3, 2, 4, 5)}[side]
        merges, Ma, Na = [], m[lo], n[lo]
        for t in range(lo + 1, hi + 1):
            merges.append(((r[lo] * Ma * Na, r[t]), (r[t], m[t] * n[t] * r[t + 1]),
                           (r[lo], Ma, Na, m[t], n[t], r[t + 1]),
                           (r[lo], Ma * m[t], Na * n[t], r[t + 1])))
            Ma, Na = Ma * m[t], Na * n[t]
        shape4 = (r[lo], Ma, Na, r[hi + 1])
        steps.append((lo, hi, P, K, Q, rows, axes4 if hi == lo else axes6, merges,
                      tuple(shape4[a] for a in axes4), tuple(int(a) for a in np.argsort(axes4))))
    return steps


def hand_forward(steps, cores, X, keep=None):
    """``X @ W.T`` by the steps of :func:`hand_program`; ``keep`` (a list) gets what the
    backward pass needs."""
    state = X
    for lo, hi, P, K, Q, rows, axes, merges, _, _ in steps:
        a, pre = cores[lo], []
        for k, (a2, b2, six, four) in enumerate(merges):
            pre.append(a)
            prod = (a.reshape(a2) @ cores[lo + 1 + k].reshape(b2)).reshape(six)
            a = prod if k == len(merges) - 1 else prod.transpose(0, 1, 3, 2, 4, 5).reshape(four)
        block = a.transpose(axes).reshape(rows, K)
        if keep is not None:
            keep.append((block, state, pre))
        if P == 1:
            state = block @ state.reshape(K, Q)
        elif Q == 1:
            state = state.reshape(P, K) @ block.T
        else:
            state = block @ state.reshape(P, K, Q)
    return state.reshape(X.shape[0], -1)


def hand_backward(steps, cores, kept, dy, grads):
    """The gradients of ``y = X @ W.T``: adds the core gradients into ``grads``, returns dx."""
    g = dy
    for (lo, hi, P, K, Q, rows, _, _, gshape, gaxes), (block, state, pre) in zip(
            reversed(steps), reversed(kept)):
        if P == 1:
            g2, s2 = g.reshape(rows, Q), state.reshape(K, Q)
            dblock, g = g2 @ s2.T, block.T @ g2
        elif Q == 1:
            g2, s2 = g.reshape(P, rows), state.reshape(P, K)
            dblock, g = g2.T @ s2, g2 @ block
        else:
            g3 = g.reshape(P, rows, Q)
            dblock = (g3 @ state.reshape(P, K, Q).transpose(0, 2, 1)).sum(axis=0)
            g = block.T @ g3
        D = dblock.reshape(gshape).transpose(gaxes)
        for t in range(hi, lo, -1):
            left = pre[t - lo - 1]
            r0, Mp, Np, rt = left.shape
            _, mt, nt, r1 = cores[t].shape
            E = D.reshape(r0, Mp, mt, Np, nt, r1).transpose(0, 1, 3, 2, 4, 5).reshape(
                r0 * Mp * Np, mt * nt * r1)
            grads[t] += (left.reshape(-1, rt).T @ E).reshape(rt, mt, nt, r1)
            D = (E @ cores[t].reshape(rt, -1).T).reshape(r0, Mp, Np, rt)
        grads[lo] += D
    return g.reshape(dy.shape[0], -1)


# ---- the cases --------------------------------------------------------------------------------
LAYERS = [
    # name, in_features, out_features, in_modes, out_modes, rank, dtype, batch
    ("fc6", 25088, 4096, (2, 7, 8, 8, 7, 4), (4,) * 6, 4, np.float32, 100),
    ("1024", 1024, 1024, (4, 8, 8, 4), (4, 8, 8, 4), 8, np.float32, 256),
    ("mnist_r8", 1024, 1024, (4, 8, 8, 4), (4, 8, 8, 4), 8, np.float32, 100),
    ("mnist_r2", 1024, 1024, (4, 8, 8, 4), (4, 8, 8, 4), 2, np.float32, 100),
    ("tiny", 64, 64, (2,) * 6, (2,) * 6, 2, np.float64, 1),
    ("tiny", 64, 64, (2,) * 6, (2,) * 6, 2, np.float64, 8),
    ("tiny", 64, 64, (2,) * 6, (2,) * 6, 2, np.float64, 64),
]


def load_package(path, name):
    """``path/tensortrain`` imported as the package ``name``."""
    init = Path(path) / "tensortrain" / "__init__.py"
    spec = importlib.util.spec_from_file_location(name, init,
                                                  submodule_search_locations=[str(init.parent)])
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    importlib.import_module(name + ".nn")
    return mod


def layer_fns(pkg, spec, backend, rng_seed=0):
    """``(X @ W.T, forward, forward + backward)`` callables of one package for one case, on
    the backend's arrays."""
    _, nin, nout, in_modes, out_modes, rank, dtype, batch = spec
    layer = pkg.nn.TTLinear(nin, nout, rank, in_modes=in_modes, out_modes=out_modes,
                            dtype=dtype, rng=rng_seed, xp=backend.name)
    rng = np.random.default_rng(1)
    X = backend.asarray(rng.standard_normal((batch, nin)).astype(dtype))
    dy = backend.asarray(rng.standard_normal((batch, nout)).astype(dtype))
    W = layer.weight

    def product():
        return X @ W.T

    def forward():
        return layer.forward(X)

    def forward_backward():
        layer.forward(X)
        return layer.backward(dy)

    return layer, X, dy, (product, forward, forward_backward)


def hand_fns(layer, X, dy):
    """The hand-written reference of ``X @ W.T`` and of forward + backward (with the bias and
    the gradient accumulation of ``TTLinear``), each along the plan the library runs for it
    (``W.matmul_plan(B)`` for the product, ``objective='train'`` for the layer)."""
    cores = [p.data for p in layer.cores]
    bias = layer.bias.data
    W, B = layer.weight, X.shape[0]
    steps = hand_program(W, B, W.matmul_plan(B).order)
    train_steps = hand_program(W, B, W.matmul_plan(B, objective=_train_objective(W)).order)
    grads = [c * 0 for c in cores]                  # zeros on the cores' backend
    gbias = bias * 0

    def product():
        return hand_forward(steps, cores, X)

    def forward_backward():
        kept = []
        hand_forward(train_steps, cores, X, kept) + bias
        dx = hand_backward(train_steps, cores, kept, dy, grads)
        gbias.__iadd__(dy.sum(axis=0))
        return dx

    return product, forward_backward


def _train_objective(W):
    """The objective ``TTLinear`` trains with on ``W``'s backend, as the package under test
    (the working tree) chooses it; only the working tree's layer gets a hand-written loop."""
    from tensortrain import contraction  # noqa: PLC0415
    return contraction.default_objective(W.cores[0], train=True)


def check(layer, X, dy, fns, hand, backend):
    """Results of the library and of the hand-written loop against dense NumPy (float64, on
    the host)."""
    Wd = backend.to_host(layer.weight.full()).astype(np.float64)
    X64, dy64 = backend.to_host(X).astype(np.float64), backend.to_host(dy).astype(np.float64)
    ref_y, ref_dx = X64 @ Wd.T, dy64 @ Wd
    errs = {}
    for label, got, ref in (("X @ W.T", fns[0](), ref_y), ("hand", hand[0](), ref_y),
                            ("dx", fns[2](), ref_dx), ("hand dx", hand[1](), ref_dx)):
        got = backend.to_host(got)
        errs[label] = float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-300))
    return errs


def dense_fns(layer, X, dy):
    """A dense layer of the same sizes on the same backend: ``X @ Wd.T + b`` and its forward
    + backward (``dx = dy @ Wd``, ``dWd = dy^T X``, ``db = sum(dy)``): the reference a TT
    layer has to beat on a GPU."""
    Wd = layer.weight.full()
    b = layer.bias.data

    def forward():
        return X @ Wd.T + b

    def forward_backward():
        X @ Wd.T + b
        dy.T @ X
        dy.sum(axis=0)
        return dy @ Wd

    return forward, forward_backward


def product_floor(layer, X, repeats):
    """The training plan's products alone: each step's forward GEMM (or stack of GEMMs) and
    its two backward ones (the block's and the state's gradient), timed one at a time on
    arrays made beforehand, with none of the rest (merging the cores, splitting the block
    gradients, bias, Python).  Returns ``(forward_s, backward_s, steps)``: sums of the best
    times, and per step ``(P, K, Q, rows, forward_s, backward_s)``.  Their ratio is what
    forward + backward / forward comes to when only the products cost anything."""
    from tensortrain import contraction, gradients  # noqa: PLC0415
    _, ctx = gradients.matmul_forward(layer.weight, X, objective=_train_objective(layer.weight))
    rng = np.random.default_rng(2)
    fns = []
    for rec in ctx.record:
        g = rec.code.gemm
        out = np.empty(g.P * g.rows * g.Q, dtype=X.dtype)
        dout = rng.standard_normal(g.P * g.rows * g.Q).astype(X.dtype)
        din = np.empty(g.P * g.K * g.Q, dtype=X.dtype)
        fns.append(lambda rec=rec, out=out: contraction._apply(rec.block, rec.state, rec.code,
                                                               np, out))
        fns.append(lambda rec=rec, dout=dout, din=din: gradients._gemm_grads(rec, dout, True,
                                                                              np, din))
    best = [r["best"] for r in C.time_many(fns, repeats=repeats)]
    steps = [(rec.P, rec.K, rec.Q, rec.code.gemm.rows, best[2 * i], best[2 * i + 1])
             for i, rec in enumerate(ctx.record)]
    return sum(best[0::2]), sum(best[1::2]), steps


def main():
    p = C.base_parser(__doc__.splitlines()[0])
    p.add_argument("--compare", metavar="DIR", default=None,
                   help="also time DIR/tensortrain (another version), interleaved")
    p.add_argument("--cases", default=None, help="comma-separated case names (fc6,1024,mnist_r8,mnist_r2,tiny)")
    args = p.parse_args()
    tt = C.import_tensortrain()
    import tensortrain.nn  # noqa: F401,PLC0415

    env = C.environment()
    C.print_environment(env)
    backend = C.Backend(args.device)
    other = load_package(args.compare, "tensortrain_compare") if args.compare else None
    repeats = args.repeats or (3 if args.quick else 9)
    wanted = set(args.cases.split(",")) if args.cases else None
    rows = []
    for spec in LAYERS:
        name, batch = spec[0], spec[7]
        if wanted and name not in wanted:
            continue
        layer, X, dy, fns = layer_fns(tt, spec, backend)
        hand = hand_fns(layer, X, dy)
        errs = check(layer, X, dy, fns, hand, backend)
        timed = list(fns) + list(hand)
        labels = ["X @ W.T", "forward", "forward+backward", "hand X @ W.T", "hand fwd+bwd"]
        if name != "tiny":
            # the same layer as a network's first one: a layer of its own (same cores) whose
            # backward never computes the input gradient, so that it plans for that
            first, _, _, ffns = layer_fns(tt, spec, backend)

            def first_step(first=first, X=X, dy=dy):
                first.forward(X)
                return first.backward(dy, need_input_grad=False)

            first_step()
            timed += [ffns[1], first_step]
            labels += ["first layer: forward", "first layer: fwd+bwd, no dx"]
        if other is not None:
            _, _, _, ofns = layer_fns(other, spec, backend)
            timed += list(ofns)
            labels += ["compare: X @ W.T", "compare: forward", "compare: forward+backward"]
        if name == "tiny":
            Wd = layer.weight.full()
            timed.append(lambda Wd=Wd, X=X: X @ Wd.T)
            labels.append("dense NumPy X @ Wd.T")
        elif backend.name == "cupy":        # the dense layer on the device (fc6: 411 MB)
            timed += list(dense_fns(layer, X, dy))
            labels += ["dense forward", "dense fwd+bwd"]
        res = C.time_many(timed, repeats=repeats, sync=backend.sync, quiet_s=args.wait_quiet)
        t = {lab: r["best"] for lab, r in zip(labels, res)}
        row = {"case": name, "batch": batch, "dtype": np.dtype(spec[6]).name,
               "times_s": t, "errors": errs, "bg_cpu": res[0]["background_cpu"],
               "plan": layer.weight.matmul_plan(batch).describe(),
               "train_plan": layer.weight.matmul_plan(
                   batch, objective=_train_objective(layer.weight)).describe()}
        rows.append(row)
        us = name == "tiny"
        unit, scale = ("us", 1e6) if us else ("ms", 1e3)
        print(f"== {name}, {row['dtype']}, batch {batch}: {row['plan']}  "
              f"(bg cpu {C.fmt_bg(row['bg_cpu'])})")
        print(f"   training plan: {row['train_plan']}")
        for lab in labels:
            print(f"  {lab:28s} {t[lab] * scale:9.3f} {unit}")
        if "first layer: forward" in t:
            # over the faster of the two layers' forward passes (they differ by noise, or
            # by plan): the ratio is not flattered by a slow sample in its denominator
            fb = t["first layer: fwd+bwd, no dx"]
            f = min(t["first layer: forward"], t["forward"])
            print(f"  first layer: fwd+bwd, no dx / forward {fb / f:.2f}x   (plan: "
                  f"{first.weight.matmul_plan(batch, objective=first._objective(first.weight)).describe()})")
        for den in ("forward", "X @ W.T"):
            ratio = t["forward+backward"] / t[den]
            line = f"  forward+backward / {den:12s} {ratio:.2f}x"
            if other is not None:
                line += (f"   (compare: "
                         f"{t['compare: forward+backward'] / t['compare: ' + den]:.2f}x)")
            print(line)
        print(f"  X @ W.T / hand loop             {t['X @ W.T'] / t['hand X @ W.T']:.2f}x")
        print(f"  forward+backward / hand loop    {t['forward+backward'] / t['hand fwd+bwd']:.2f}x")
        if backend.name == "numpy" and name != "tiny":
            f_s, b_s, steps = product_floor(layer, X, repeats)
            row["product_floor"] = {"forward_s": f_s, "backward_s": b_s, "steps": [
                dict(zip(("P", "K", "Q", "rows", "forward_s", "backward_s"), st))
                for st in steps]}
            print(f"  training plan's products alone: forward {f_s * scale:.3f} {unit}, "
                  f"backward {b_s * scale:.3f} {unit}, (forward+backward) / forward "
                  f"{(f_s + b_s) / f_s:.2f}x  (the floor of that ratio for this plan)")
            for P, K, Q, nrow, fs, bs in steps:
                print(f"    step P={P} K={K} Q={Q} rows={nrow}: forward {fs * scale:.3f}, "
                      f"backward {bs * scale:.3f} {unit} ({bs / fs:.2f}x)")
        if "dense fwd+bwd" in t:
            print(f"  dense fwd+bwd / TT fwd+bwd     "
                  f"{t['dense fwd+bwd'] / t['forward+backward']:.2f}x (above 1x the TT layer is "
                  f"faster)")
        print("  max relative errors vs dense float64: "
              + ", ".join(f"{k} {v:.1e}" for k, v in errs.items()))
        backend.free()
    if not args.no_json:
        print("wrote", C.write_results(C.result_name("bench_layer", args), {"rows": rows}, env,
                                       args))


if __name__ == "__main__":
    main()

"""Table 2 of Novikov et al. (2015): compression of VGG-16 and VGG-19 by TT fully-connected layers.

Only the *compression* columns are reproduced, from layer shapes alone (the top-1 / top-5
ImageNet errors need ImageNet training and are not).  Every TT count is the total size of the
cores of a real ``TTLinear`` built by the library with the paper's modes and ranks:

- fc6, 25088 -> 4096: input modes (2, 7, 8, 8, 7, 4), output modes 4^6, TT-ranks 4, 2, 1;
- fc7, 4096 -> 4096: input and output modes 4^6, TT-rank 4 ("TT4 TT4 FC");
- the matrix-rank baselines MRr replace fc6 by ``25088 -> r -> 4096`` (``r (25088 + 4096)``
  weights, the paper's count, which leaves out the bottleneck's bias).

"TT-layers compression" is the dense weights of the replaced layers over the TT (or MR)
weights, biases excluded.  The whole-network factors divide the parameter count of VGG-16 /
VGG-19 (every conv and FC weight and bias, computed from the layer shapes:
138,357,544 / 143,667,240) by the same count with the replaced weight matrices swapped for the
TT cores (biases kept).

    python benchmarks/paper/table2_vgg.py [--quick]
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _paper as P

C = P.C

# VGG configurations D and E of Simonyan & Zisserman (3x3 convolutions, 'M' = max pooling)
VGG_CONV = {
    "VGG-16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
               512, 512, 512, "M"],
    "VGG-19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
               512, 512, 512, 512, "M"],
}
VGG_FC = [("fc6", 7 * 7 * 512, 4096), ("fc7", 4096, 4096), ("fc8", 4096, 1000)]
KNOWN_TOTAL = {"VGG-16": 138_357_544, "VGG-19": 143_667_240}

FC6_IN_MODES = (2, 7, 8, 8, 7, 4)
FC6_OUT_MODES = (4,) * 6
FC7_MODES = (4,) * 6

# Table 2 of the paper: compression of the TT (or MR) layers, of VGG-16 and of VGG-19
PAPER = {
    "TT4 FC FC": (50972, 3.9, 3.5),
    "TT2 FC FC": (194622, 3.9, 3.5),
    "TT1 FC FC": (713614, 3.9, 3.5),
    "TT4 TT4 FC": (37732, 7.4, 6.0),
    "MR1 FC FC": (3521, 3.9, 3.5),
    "MR5 FC FC": (704, 3.9, 3.5),
    "MR50 FC FC": (70, 3.7, 3.4),
}


def vgg_layers(name):
    """``[(layer name, weights, biases)]`` of a VGG network from its shapes."""
    layers, c_in, k = [], 3, 0
    for v in VGG_CONV[name]:
        if v == "M":
            continue
        k += 1
        layers.append((f"conv{k}", c_in * v * 3 * 3, v))
        c_in = v
    layers += [(n, i * o, o) for n, i, o in VGG_FC]
    return layers


def tt_layer(in_f, out_f, in_modes, out_modes, rank):
    from tensortrain.nn import TTLinear  # noqa: PLC0415

    return TTLinear(in_f, out_f, rank, in_modes=in_modes, out_modes=out_modes, rng=0)


def architectures():
    """``{name: {replaced layer: (weights of the replacement, description)}}``."""
    fc6 = {r: tt_layer(25088, 4096, FC6_IN_MODES, FC6_OUT_MODES, r) for r in (4, 2, 1)}
    fc7 = tt_layer(4096, 4096, FC7_MODES, FC7_MODES, 4)

    def tt(layer):
        w = layer.weight
        return (sum(c.size for c in w.cores),
                f"TT {w.shape[0]}x{w.shape[1]}, out modes {w.row_modes}, in modes "
                f"{w.col_modes}, ranks {w.ranks}")

    arch = {"TT4 FC FC": {"fc6": tt(fc6[4])},
            "TT2 FC FC": {"fc6": tt(fc6[2])},
            "TT1 FC FC": {"fc6": tt(fc6[1])},
            "TT4 TT4 FC": {"fc6": tt(fc6[4]), "fc7": tt(fc7)}}
    for r in (1, 5, 50):
        arch[f"MR{r} FC FC"] = {"fc6": (r * (25088 + 4096), f"25088 -> {r} -> 4096, no biases")}
    return arch


def check(ours, paper, digits):
    """PASS when ``ours``, rounded or truncated to the paper's printed precision (``digits``
    decimals), is the paper's figure (the paper truncates 37,732.8 to 37,732)."""
    scale = 10 ** digits
    shown = {round(ours * scale) / scale, math.floor(ours * scale) / scale}
    return "PASS" if any(abs(v - paper) < 0.5 / scale for v in shown) else "MISS"


def main(argv=None):
    args = P.parser(__doc__.splitlines()[0]).parse_args(argv)
    t0 = time.perf_counter()
    env = P.start(args)

    nets = {name: vgg_layers(name) for name in VGG_CONV}
    totals = {name: sum(w + b for _, w, b in layers) for name, layers in nets.items()}
    dense_w = {n: i * o for n, i, o in VGG_FC}
    rows = []
    for name, layers in nets.items():
        conv = sum(w + b for n, w, b in layers if n.startswith("conv"))
        fc = sum(w + b for n, w, b in layers if n.startswith("fc"))
        rows.append([name, sum(n.startswith("conv") for n, _, _ in layers), f"{conv:,}",
                     f"{fc:,}", f"{totals[name]:,}", f"{KNOWN_TOTAL[name]:,}",
                     "PASS" if totals[name] == KNOWN_TOTAL[name] else "MISS"])
    C.print_table("VGG parameter counts from the layer shapes (weights + biases)",
                  ["network", "conv layers", "conv params", "FC params", "total",
                   "known total", "check"], rows)

    arch = architectures()
    rows, results = [], {}
    for a, repl in arch.items():
        replaced = sum(dense_w[layer] for layer in repl)
        new = sum(w for w, _ in repl.values())
        layer_c = replaced / new
        net_c = {n: totals[n] / (totals[n] - replaced + new) for n in nets}
        p_layer, p16, p19 = PAPER[a]
        checks = [check(layer_c, p_layer, digits=0), check(net_c["VGG-16"], p16, digits=1),
                  check(net_c["VGG-19"], p19, digits=1)]
        results[a] = {"replaced_layers": list(repl), "replacement_weights": new,
                      "replaced_dense_weights": replaced, "layers_compression": layer_c,
                      "vgg16_compression": net_c["VGG-16"],
                      "vgg19_compression": net_c["VGG-19"],
                      "vgg16_params": totals["VGG-16"] - replaced + new,
                      "vgg19_params": totals["VGG-19"] - replaced + new,
                      "structure": {k: v[1] for k, v in repl.items()},
                      "paper": {"layers": p_layer, "vgg16": p16, "vgg19": p19},
                      "checks": checks}
        rows.append([a, f"{new:,}", f"{layer_c:,.1f}x", f"{p_layer:,}x",
                     f"{net_c['VGG-16']:.2f}x", f"{p16}x", f"{net_c['VGG-19']:.2f}x",
                     f"{p19}x", " ".join(checks)])
    C.print_table("Table 2: compression (ours from TTLinear core sizes | paper)",
                  ["architecture", "TT/MR weights", "layers compr.", "paper",
                   "VGG-16 compr.", "paper", "VGG-19 compr.", "paper", "check 1/16/19"], rows)
    print("check: ours rounded or truncated to the paper's printed precision (integer for the "
          "layers, one decimal for the networks) is the paper's figure")
    for a, r in results.items():
        for layer, s in r["structure"].items():
            print(f"  {a:<11} {layer}: {s}")
    # the fc6 numbers the paper quotes in the text
    fc6 = {r: arch[f"TT{r} FC FC"]["fc6"][0] for r in (4, 2, 1)}
    fc6_ok = (fc6[4], fc6[2], fc6[1]) == (2016, 528, 144)
    print(f"\nfc6 TT cores: rank 4: {fc6[4]:,}, rank 2: {fc6[2]:,}, rank 1: {fc6[1]:,} "
          f"weights (expected 2,016 / 528 / 144: {'PASS' if fc6_ok else 'MISS'}); dense fc6 "
          f"{dense_w['fc6']:,} weights ({dense_w['fc6'] * 4 / 2**20:.1f} MiB in float32)")
    ok = fc6_ok and all(c == "PASS" for r in results.values() for c in r["checks"])
    print(f"all compression factors match the paper: {'yes' if ok else 'NO'}")

    fig = None
    if not args.no_plot:
        fig = plot(results, P.figure_path("table2_vgg", args))
        print(f"figure: {fig.relative_to(C.REPO_ROOT)}")
    payload = {"paper": P.PAPER, "result": "Table 2 (compression columns)",
               "vgg_totals": totals, "vgg_layers": nets, "architectures": results,
               "fc6_tt_weights": fc6, "all_match": ok,
               "figure": None if fig is None else str(fig.relative_to(C.REPO_ROOT))}
    P.finish(P.result_name("table2_vgg", args), payload, env, args, t0)
    return 0


def plot(results, path):
    fig = P.new_figure(figsize=(10, 4.2))
    ax1, ax2 = fig.subplots(1, 2)
    names = list(results)
    x = range(len(names))
    ours = [results[a]["layers_compression"] for a in names]
    paper = [results[a]["paper"]["layers"] for a in names]
    ax1.bar([i - 0.2 for i in x], ours, 0.4, label="ours (TTLinear core sizes)")
    ax1.bar([i + 0.2 for i in x], paper, 0.4, label="paper", alpha=0.6)
    ax1.set_yscale("log")
    ax1.set_title("compression of the replaced FC layers", fontsize=10)
    ax2.bar([i - 0.3 for i in x], [results[a]["vgg16_compression"] for a in names], 0.2,
            label="VGG-16 ours")
    ax2.bar([i - 0.1 for i in x], [results[a]["paper"]["vgg16"] for a in names], 0.2,
            label="VGG-16 paper", alpha=0.6)
    ax2.bar([i + 0.1 for i in x], [results[a]["vgg19_compression"] for a in names], 0.2,
            label="VGG-19 ours")
    ax2.bar([i + 0.3 for i in x], [results[a]["paper"]["vgg19"] for a in names], 0.2,
            label="VGG-19 paper", alpha=0.6)
    ax2.set_title("compression of the whole network", fontsize=10)
    for ax in (ax1, ax2):
        ax.set_xticks(list(x))
        ax.set_xticklabels(names, rotation=35, ha="right", fontsize=8)
        ax.grid(True, axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Table 2 of Novikov et al. (2015), compression columns", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


if __name__ == "__main__":
    sys.exit(main())

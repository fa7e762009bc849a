"""Turn ``results.json`` into ``results.md`` (tables, targets) and plots (PNG, matplotlib)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

#: The issue's targets on a 2-core CPU, checked against the measurements (never by tests).
TARGET_RATIO_512 = 0.25
TARGET_STEP_OVERHEAD = 1.15
TARGET_BF16_SPEEDUP_256 = 1.6
TARGET_BF16_OBJECTIVE = 0.05
#: "Linear" memory: a straight line through the measured growth explains it (R^2) and no point
#: beyond the smallest size is further than this from the line, relative to its value.
LINEAR_R2 = 0.99
LINEAR_RESIDUAL = 0.10


def time_to_reach(curve: list[list[float]], target: float) -> float | None:
    """First time at which a ``[(seconds, J)]`` curve is at or below ``target`` (``None``: never)."""
    for seconds, value in curve:
        if value <= target:
            return seconds
    return None


def linear_fit(xs: list[float], ys: list[float]) -> dict[str, float]:
    """Least-squares ``y = a + b x``; R^2; largest relative residual beyond the smallest x."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    a = my - b * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys))
    order = sorted(range(n), key=lambda i: xs[i])[1:]
    worst = max((abs(ys[i] - a - b * xs[i]) / abs(ys[i]) for i in order if ys[i]), default=0.0)
    return {"a": a, "b": b, "r2": 1 - ss_res / ss_tot if ss_tot else 1.0, "worst_residual": worst}


def bytes_per_position_trend(positions: list[float], growth_bytes: list[float]) -> tuple[float, float]:
    """Growth per position at the smallest and at the largest size.

    Memory ``a + b N`` with a fixed part ``a >= 0`` gives a falling or flat ratio; a term faster
    than linear (a position-by-position matrix, say) makes it rise.
    """
    order = sorted(range(len(positions)), key=lambda i: positions[i])
    first, last = order[0], order[-1]
    return growth_bytes[first] / positions[first], growth_bytes[last] / positions[last]


def _tq_rows(runs: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (method variant, pair, size) with the reference of the same pair and size."""
    rows = []
    for key, run in runs.items():
        if not key.startswith("tq/") or run["method"] == "reference":
            continue
        _, variant, pair, size = key.split("/")
        ref = runs.get(f"tq/reference/{pair}/{size}")
        if ref is None:
            continue
        reach = time_to_reach(run["curve"], ref["objective"])
        # the textbook returns its last iterate, which can be worse than an earlier one (L-BFGS
        # without line search, clamped): also measure against the best J it passed through
        ref_best = min(value for _, value in ref["curve"])
        reach_best = time_to_reach(run["curve"], ref_best)
        rows.append(
            {
                "variant": variant,
                "pair": pair,
                "size": int(size),
                "shape": run.get("shape"),
                "run": run,
                "ref": ref,
                "ref_best": ref_best,
                "reach": reach,
                "ratio": reach / ref["seconds"] if reach is not None else None,
                "reach_best": reach_best,
                "ratio_best": reach_best / ref["seconds"] if reach_best is not None else None,
            }
        )
    order = {"ndstyle": 0, "pystiche": 1}
    rows.sort(key=lambda r: (r["size"], r["pair"], order.get(r["variant"], 2), r["variant"]))
    return rows


def _fmt(value: float | None, spec: str = ".3f", none: str = "—") -> str:
    return none if value is None else format(value, spec)


def _targets(runs: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    lines = ["## Targets", "", "| target | measured | met |", "|---|---|---|"]
    at512 = [r for r in rows if r["variant"] == "ndstyle" and r["size"] == 512]
    if at512:
        ratios = [r["ratio"] for r in at512]
        worst = None if None in ratios else max(ratios)
        text = ", ".join(f"{r['pair']} {_fmt(r['ratio'])}" for r in at512)
        met = worst is not None and worst <= TARGET_RATIO_512
        lines.append(f"| time-to-quality ratio ≤ {TARGET_RATIO_512} at 512 px | {text} | {_yes(met)} |")
        ratios = [r["ratio_best"] for r in at512]
        worst = None if None in ratios else max(ratios)
        text = ", ".join(f"{r['pair']} {_fmt(r['ratio_best'], '.3f', 'never')}" for r in at512)
        met = worst is not None and worst <= TARGET_RATIO_512
        lines.append(
            f"| the same against the best J the reference passed through (stricter) | {text} | {_yes(met)} |"
        )
    steps = [r for k, r in runs.items() if k.startswith("step/")]
    for step in sorted(steps, key=lambda s: (s["size"], s["precision"])):
        met = step["overhead"] <= TARGET_STEP_OVERHEAD
        lines.append(
            f"| step ≤ {TARGET_STEP_OVERHEAD}× bare fwd+bwd ({step['size']} px, {step['precision']}) | "
            f"{step['overhead']:.3f}× ({step['step_s']:.3f} s vs {step['bare_fwd_bwd_s']:.3f} s) | "
            f"{_yes(met)} |"
        )
    fp32, bf16 = runs.get("step/256/fp32"), runs.get("step/256/bf16")
    if fp32 and bf16:
        speedup = fp32["step_s"] / bf16["step_s"]
        lines.append(
            f"| bf16 ≥ {TARGET_BF16_SPEEDUP_256}× faster per step than fp32 at 256 px | {speedup:.2f}× | "
            f"{_yes(speedup >= TARGET_BF16_SPEEDUP_256)} |"
        )
    for row in rows:
        if row["variant"] != "ndstyle:fp32":
            continue
        default = runs.get(f"tq/ndstyle/{row['pair']}/{row['size']}")
        if default is None or default.get("precision") != "bf16":
            continue
        change = default["objective"] / row["run"]["objective"] - 1
        lines.append(
            f"| bf16 final J within {TARGET_BF16_OBJECTIVE:.0%} of fp32 ({row['pair']}, {row['size']} px) | "
            f"{change:+.1%} | {_yes(abs(change) <= TARGET_BF16_OBJECTIVE)} |"
        )
    for dims, fit in _scaling_fits(runs).items():
        met = fit["r2"] >= LINEAR_R2 and fit["worst_residual"] <= LINEAR_RESIDUAL
        lines.append(
            f"| peak memory linear in positions ({dims}-D: R² ≥ {LINEAR_R2}, residuals ≤ "
            f"{LINEAR_RESIDUAL:.0%}) | R² {fit['r2']:.4f}, worst residual {fit['worst_residual']:.1%}, "
            f"{fit['b']:.0f} B/position | {_yes(met)} |"
        )
    for dims, (smallest, largest) in _scaling_trends(runs).items():
        lines.append(
            f"| peak memory at most linear ({dims}-D: growth per position does not rise with size) | "
            f"{smallest:.0f} B/position at the smallest size, {largest:.0f} at the largest | "
            f"{_yes(largest <= smallest)} |"
        )
    return [*lines, ""]


def _yes(met: bool) -> str:
    return "yes" if met else "**no**"


def _scaling_points(runs: dict[str, Any], dims: int) -> tuple[list[float], list[float]]:
    points = [r for k, r in runs.items() if k.startswith(f"scaling/{dims}/")]
    return [float(p["positions"]) for p in points], [p["growth_mb"] * 2**20 for p in points]


def _per_dims(
    runs: dict[str, Any], summary: Callable[[list[float], list[float]], T], at_least: int
) -> dict[int, T]:
    """``summary(positions, growth_bytes)`` of each dimension's scaling runs (if ``at_least`` of them)."""
    out = {}
    for dims in (1, 2, 3):
        xs, ys = _scaling_points(runs, dims)
        if len(xs) >= at_least:
            out[dims] = summary(xs, ys)
    return out


def _scaling_trends(runs: dict[str, Any]) -> dict[int, tuple[float, float]]:
    return _per_dims(runs, bytes_per_position_trend, at_least=2)


def _scaling_fits(runs: dict[str, Any]) -> dict[int, dict[str, float]]:
    return _per_dims(runs, linear_fit, at_least=3)


def _tq_tables(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## (a) Time to quality, 2-D (offline ImageNet VGG-16, same weights for every method)",
        "",
        "J = J_content + β·J_style (β = 1e-4) of each result, evaluated in fp32 at the working size by"
        " one evaluator (`ndstyle.evaluate_costs`). *reach* = seconds the method needed to get to the"
        " reference's final J (from snapshots every 10 steps); *ratio* = reach / reference seconds."
        " The textbook method returns its last iterate; *best* columns use instead the lowest J its"
        " snapshots passed through (its row shows that J), and *never* means the method did not get"
        " there. Peak MB: the process's resident-set high-water mark during the run (+ what the run"
        " added to the process once the network and images were loaded).",
        "",
        "| size | pair | method | seconds | J | J vs reference | reach s | ratio | ratio vs best | peak MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    seen: set[tuple[str, int]] = set()
    for row in rows:
        if row["variant"].startswith("ndstyle:"):
            continue
        ref = row["ref"]
        if (row["pair"], row["size"]) not in seen:
            seen.add((row["pair"], row["size"]))
            lines.append(
                f"| {row['size']} | {row['pair']} | reference (300 L-BFGS, fp32) | {ref['seconds']:.1f} | "
                f"{ref['objective']:.4g} (best {row['ref_best']:.4g}) | — | — | 1 | — | "
                f"{_memory(ref)} |"
            )
        run = row["run"]
        label = "ndstyle defaults" + (f" ({run['precision']})" if "precision" in run else "")
        if row["variant"] != "ndstyle":
            label = f"{row['variant']} {run.get('pystiche', '')}".strip()
        lines.append(
            f"| {row['size']} | {row['pair']} | {label} | {run['seconds']:.1f} | {run['objective']:.4g} | "
            f"{run['objective'] / ref['objective'] - 1:+.1%} | {_fmt(row['reach'], '.1f', 'never')} | "
            f"{_fmt(row['ratio'], '.3f', 'never')} | {_fmt(row['ratio_best'], '.3f', 'never')} | "
            f"{_memory(run)} |"
        )
    return [*lines, ""]


def _memory(run: dict[str, Any]) -> str:
    """``peak (+growth)`` in MB: the process's peak, and what the run added to the loaded process."""
    growth = run.get("growth_mb")
    return f"{run['peak_mb']:.0f}" + ("" if growth is None else f" (+{growth:.0f})")


def _ablation_table(rows: list[dict[str, Any]], runs: dict[str, Any]) -> list[str]:
    variants = [r for r in rows if r["variant"].startswith("ndstyle")]
    if not any(r["variant"] != "ndstyle" for r in variants):
        return []
    lines = [
        "## What each default costs and buys (ndstyle variants, same pairs)",
        "",
        "| size | pair | variant | seconds | J | J vs defaults | reach s | ratio | ratio vs best |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in variants:
        default = runs.get(f"tq/ndstyle/{row['pair']}/{row['size']}")
        run = row["run"]
        name = "defaults" if row["variant"] == "ndstyle" else row["variant"].split(":", 1)[1]
        change = run["objective"] / default["objective"] - 1 if default else None
        lines.append(
            f"| {row['size']} | {row['pair']} | {name} | {run['seconds']:.1f} | {run['objective']:.4g} | "
            f"{_fmt(change, '+.1%')} | {_fmt(row['reach'], '.1f', 'never')} | "
            f"{_fmt(row['ratio'], '.3f', 'never')} | {_fmt(row['ratio_best'], '.3f', 'never')} |"
        )
    return [*lines, ""]


def _step_table(runs: dict[str, Any]) -> list[str]:
    steps = sorted(
        (r for k, r in runs.items() if k.startswith("step/")), key=lambda s: (s["size"], s["precision"])
    )
    if not steps:
        return []
    lines = [
        "## (b) Per-step time vs the bare extractor forward+backward",
        "",
        "Bare = the same VGG to relu5_1 on the same input, backward of the sum of the used activations"
        " (no Grams, costs or optimiser). Once the engine's L-BFGS history (50 pairs) is full, which is"
        " what most steps of a run cost, one bare pass is timed after every engine step, so both see"
        " the same machine; the table compares the medians (*early*: the median engine step"
        " before the history is full).",
        "",
        "| size (H×W) | precision | bare fwd+bwd s | ndstyle step s | overhead | early step s |",
        "|---|---|---|---|---|---|",
    ]
    for s in steps:
        shape = "×".join(str(v) for v in s["shape"])
        early = s.get("step_s_early")
        lines.append(
            f"| {s['size']} ({shape}) | {s['precision']} | {s['bare_fwd_bwd_s']:.3f} | {s['step_s']:.3f} | "
            f"{s['overhead']:.3f}× | {'—' if early is None else f'{early:.3f}'} |"
        )
    return [*lines, ""]


def _scaling_tables(runs: dict[str, Any]) -> list[str]:
    what = {
        1: ("seconds of 44.1 kHz stereo audio", "spectral (log-STFT + 512 random Conv1d filters)"),
        2: ("pixels per side (RGB)", "VGG-16 to relu5_1"),
        3: ("voxels per side (1 channel)", "conv3d (random, widths 16-128)"),
    }
    lines = ["## (c) Scaling: one-scale runs, 55 L-BFGS steps (history full)", ""]
    fits = _scaling_fits(runs)
    for dims in (1, 2, 3):
        points = sorted(
            (r for k, r in runs.items() if k.startswith(f"scaling/{dims}/")), key=lambda r: r["positions"]
        )
        if not points:
            continue
        size_name, net = what[dims]
        lines += [
            f"**{dims}-D** — {net}; size = {size_name}.",
            "",
            "| size | positions | precision | s/step | peak MB | growth MB | growth B/position |",
            "|---|---|---|---|---|---|---|",
        ]
        for p in points:
            lines.append(
                f"| {p['size']} | {p['positions']:,} | {p['precision']} | {p['seconds_per_step']:.3f} | "
                f"{p['peak_mb']:.0f} | {p['growth_mb']:.0f} | {p['growth_mb'] * 2**20 / p['positions']:.0f} |"
            )
        if dims in fits:
            fit = fits[dims]
            lines.append("")
            lines.append(
                f"Linear fit of growth: {fit['a'] / 2**20:.0f} MB + {fit['b']:.0f} B × positions, "
                f"R² = {fit['r2']:.4f}, worst relative residual beyond the smallest size "
                f"{fit['worst_residual']:.1%}."
            )
        lines.append("")
    return lines


def plot_curves(out: Path, runs: dict[str, Any]) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    refs = sorted(
        ((k.split("/")[2], int(k.split("/")[3])) for k in runs if k.startswith("tq/reference/")),
        key=lambda t: (t[1], t[0]),
    )
    if not refs:
        return None
    sizes = sorted({s for _, s in refs})
    pairs = sorted({p for p, _ in refs})
    fig, axes = plt.subplots(
        len(sizes), len(pairs), figsize=(4.2 * len(pairs), 3.4 * len(sizes)), squeeze=False
    )
    styles = {"reference": ("k", "-"), "ndstyle": ("C0", "-"), "pystiche": ("C3", "-")}
    for i, size in enumerate(sizes):
        for j, pair in enumerate(pairs):
            ax = axes[i][j]
            for key, run in sorted(runs.items()):
                if not key.startswith("tq/") or not key.endswith(f"/{pair}/{size}"):
                    continue
                variant = key.split("/")[1]
                color, line = styles.get(variant, (None, "--"))
                t, j_values = zip(*run["curve"])
                ax.plot(t, j_values, color=color, linestyle=line, label=variant, lw=1.4)
            ref = runs.get(f"tq/reference/{pair}/{size}")
            if ref:
                ax.axhline(ref["objective"], color="k", lw=0.6, ls=":")
                low = min(
                    min(v for _, v in r["curve"]) for k, r in runs.items() if k.endswith(f"/{pair}/{size}")
                )
                ax.set_ylim(low * 0.8, ref["curve"][0][1] * 1.5)
            ax.set_yscale("log")
            ax.set_title(f"{pair}, {size} px", fontsize=9)
            ax.set_xlabel("seconds")
            ax.set_ylabel("J (fixed evaluator)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / "tq_curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def plot_scaling(out: Path, runs: dict[str, Any]) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dims_present = [d for d in (1, 2, 3) if any(k.startswith(f"scaling/{d}/") for k in runs)]
    if not dims_present:
        return None
    fig, axes = plt.subplots(2, len(dims_present), figsize=(4.2 * len(dims_present), 6.4), squeeze=False)
    labels = {1: "samples (44.1 kHz stereo)", 2: "pixels", 3: "voxels"}
    fits = _scaling_fits(runs)
    for j, dims in enumerate(dims_present):
        points = sorted(
            (r for k, r in runs.items() if k.startswith(f"scaling/{dims}/")), key=lambda r: r["positions"]
        )
        xs = [p["positions"] for p in points]
        axes[0][j].plot(xs, [p["seconds_per_step"] for p in points], "o-")
        axes[0][j].set_title(f"{dims}-D: seconds per step ({points[0]['precision']})", fontsize=9)
        axes[1][j].plot(xs, [p["growth_mb"] for p in points], "o", label="measured growth")
        axes[1][j].plot(xs, [p["peak_mb"] for p in points], "s", mfc="none", label="process peak")
        if dims in fits:
            fit = fits[dims]
            axes[1][j].plot(
                xs, [(fit["a"] + fit["b"] * x) / 2**20 for x in xs], "-", lw=0.8, label="linear fit"
            )
        axes[1][j].set_title(f"{dims}-D: peak memory (MB)", fontsize=9)
        axes[1][j].legend(fontsize=7)
        for ax in (axes[0][j], axes[1][j]):
            ax.set_xlabel(labels[dims])
            ax.grid(alpha=0.3)
    fig.tight_layout()
    path = out / "scaling.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def plot_gallery(out: Path, runs: dict[str, Any]) -> str | None:
    """Content, style and each method's final image, one row per pair, at the largest size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from inputs import load_pair
    from PIL import Image

    methods = ("reference", "ndstyle", "pystiche")
    sizes = [int(k.split("/")[3]) for k in runs if k.startswith("tq/reference/")]
    if not sizes:
        return None
    size = max(sizes)
    pairs = sorted(
        {k.split("/")[2] for k in runs if k.startswith("tq/reference/") and k.endswith(f"/{size}")}
    )
    images = out / "images"
    fig, axes = plt.subplots(
        len(pairs), 2 + len(methods), figsize=(3.0 * (2 + len(methods)), 2.3 * len(pairs))
    )
    axes = [axes] if len(pairs) == 1 else axes
    for row, pair in zip(axes, pairs):
        content, style = load_pair(pair, size)
        panels = [("content", content.permute(1, 2, 0).numpy()), ("style", style.permute(1, 2, 0).numpy())]
        for method in methods:
            key = f"tq/{method}/{pair}/{size}"
            path = images / f"tq_{method}_{pair}_{size}.png"
            if key in runs and path.exists():
                title = f"{method}: J {runs[key]['objective']:.4g}, {runs[key]['seconds']:.0f} s"
                panels.append((title, Image.open(path)))
            else:
                panels.append((f"{method}: not run", None))
        for ax, (title, picture) in zip(row, panels):
            if picture is not None:
                ax.imshow(picture)
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    path = out / "gallery.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path.name


def write_report(out: Path, data: dict[str, Any]) -> str:
    """Write ``out/results.md`` and the plots; return the Markdown."""
    runs = data["runs"]
    rows = _tq_rows(runs)
    m = data["machine"]
    where = "CPU only" if m["device"] == "cpu" else f"GPU: {m.get('gpu', m['device'])}"
    lines = [
        "# ndstyle benchmark results",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['threads']} torch threads, "
        f"native bf16 on the CPU: {m['native_bf16_cpu']}; Python {m['python']}, torch {m['torch']}. "
        f"**{where}.**",
        "",
        "Commands (with the time and the 1-minute load average when each started):",
        "",
        *[f"    {c}" for c in data["commands"]],
        "",
    ]
    lines += _targets(runs, rows)
    lines += _tq_tables(rows)
    curves = plot_curves(out, runs)
    if curves:
        lines += [f"![J vs time]({curves})", ""]
    gallery = plot_gallery(out, runs)
    if gallery:
        lines += [f"![content, style and each method's result at the largest size]({gallery})", ""]
    lines += _ablation_table(rows, runs)
    lines += _step_table(runs)
    lines += _scaling_tables(runs)
    scaling = plot_scaling(out, runs)
    if scaling:
        lines += [f"![scaling]({scaling})", ""]
    text = "\n".join(lines)
    (out / "results.md").write_text(text)
    return text

"""pystiche 1.0.1 as a peer of ndstyle's time-to-quality benchmark (Gatys et al. image optimisation).

Runs INSIDE ``benchmarks/.venv-pystiche`` (see ``setup_pystiche.sh``); it never imports ndstyle.
It builds pystiche's own VGG-16 multi-layer encoder (``framework="caffe"``, ``pretrained=False``),
loads ndstyle's offline VGG-16 weights into it, sets up the textbook Gatys objective with
pystiche's ``FeatureReconstructionLoss`` / ``GramLoss`` and optimises with
``pystiche.optim.image_optimization`` (pystiche's default L-BFGS, single scale, from the content).

Usage::

    benchmarks/.venv-pystiche/bin/python benchmarks/peers/pystiche_peer.py \
        --inputs IN.safetensors --weights VGG.safetensors --iterations 300 \
        --snapshot-every 10 --out OUT.safetensors

``IN`` holds ``content`` and ``style``: (3, H, W) float32 RGB in [0, 1] (sizes may differ).
``OUT`` receives ``final`` and ``snapshot_0``, ``snapshot_1``, ... (after steps ``snapshot_every``,
``2 * snapshot_every``, ... and the last step), all (3, H, W) clamped to [0, 1] the way pystiche's
``write_image`` clamps when saving (pystiche itself never clamps during the optimisation).
The last stdout line is one JSON object (see ``main``).

``--probe PROBE.safetensors`` (for ``check_pystiche.py``): instead of optimising, write pystiche's
preprocessed input, the relu activations and the loss terms on the tensor ``image`` of ``IN``.

Shims (only in this process, site-packages is never patched): see ``shim_torchvision``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import sys
import time
import warnings
from typing import Any

#: ndstyle's objective (ndstyle/extractors/vgg.py, offline caffe VGG-16).
CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
STYLE_LAYER_WEIGHT = 0.2
STYLE_WEIGHT = 1e-4  # ndstyle's ``net.default_style_weight`` for "caffe" preprocessing
#: ndstyle's caffe means, B, G, R on the 0..255 scale (ndstyle/extractors/vgg.py CAFFE_BGR_MEAN).
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)

# Loss factors.  With C channels and N positions of a layer (batch 1):
#   pystiche FeatureReconstructionLoss = mean((a_G - a_C)^2)       = sum(...) / (C N)
#   ndstyle   J_content                = sum((a_G - a_C)^2) / (4 C N)  = FRL / 4
#   pystiche GramLoss(normalize=True)  = mean((Ghat_G - Ghat_S)^2) = ||.||_F^2 / C^2,  Ghat = F F^T / N
#   ndstyle   J_style^l                = ||Ghat_G - Ghat_S||_F^2 / (4 C^2)           = GramLoss / 4
# so with   content score_weight = 1/4,
#           style layer weights  = 0.2 each (MultiLayerEncodingLoss layer_weights),
#           style score_weight   = beta / 4 = 1e-4 / 4,
# pystiche's total = J_content + beta * sum_l 0.2 * J_style^l = ndstyle's J exactly (k = 1).
# k = 1 (rather than dropping the 1/4s, k = 4) keeps L-BFGS on the same numbers as ndstyle: its
# first step (min(1, 1/|g|_1) * lr) and its tolerances are not scale-invariant.
CONTENT_SCORE_WEIGHT = 0.25
STYLE_SCORE_WEIGHT = STYLE_WEIGHT / 4.0

_VGG_ARCHS = ("vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn")


def shim_torchvision() -> list[str]:
    """Give modern torchvision the ``model_urls`` dicts that pystiche 1.0.1 reads at import.

    torchvision 0.13 replaced ``torchvision.models.vgg.model_urls`` and
    ``torchvision.models.alexnet.model_urls`` by weight enums. pystiche 1.0.1 imports
    ``alexnet.model_urls["alexnet"]`` and builds its VGG table from ``vgg.model_urls.keys()``
    (so the keys matter: they are the VGG variants it offers). The URLs are the old torchvision
    ones; they are only used with ``pretrained=True``, which this peer never asks for (nothing is
    downloaded). Note ``torchvision.models.alexnet`` is the *function* (it shadows the module), so
    the modules are taken from ``importlib``.
    """
    done = []
    vgg = importlib.import_module("torchvision.models.vgg")
    if not hasattr(vgg, "model_urls"):
        vgg.model_urls = {arch: f"https://download.pytorch.org/models/{arch}.pth" for arch in _VGG_ARCHS}
        done.append("torchvision.models.vgg.model_urls")
    alexnet = importlib.import_module("torchvision.models.alexnet")
    if not hasattr(alexnet, "model_urls"):
        alexnet.model_urls = {"alexnet": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"}
        done.append("torchvision.models.alexnet.model_urls")
    # pystiche builds torchvision's VGG with the legacy ``pretrained=False``: deprecated, still works.
    warnings.filterwarnings("ignore", message="The parameter 'pretrained' is deprecated")
    warnings.filterwarnings("ignore", message="Arguments other than a weight enum")
    return done


def build_encoder(weights: str, *, stock_means: bool = False) -> Any:
    """pystiche's VGG-16 multi-layer encoder (caffe preprocessing) with ndstyle's offline weights."""
    from pystiche import enc
    from pystiche.enc.prepostprocessing import Normalize
    from safetensors.torch import load_file

    mle = enc.vgg16_multi_layer_encoder(framework="caffe", pretrained=False)
    if not stock_means:
        # pystiche's CaffePreprocessing = Normalize(mean=(0.485, 0.458, 0.408), std=1), *255, RGB->BGR,
        # i.e. it subtracts (123.675, 116.79, 104.04) where ndstyle (and Keras/Caffe) subtract
        # (123.68, 116.779, 103.939): set the same means (the one module attribute that differs).
        (normalize,) = [m for m in mle.preprocessing.modules() if isinstance(m, Normalize)]
        normalize.mean = tuple(m / 255.0 for m in reversed(CAFFE_BGR_MEAN))  # RGB order
    tensors = load_file(weights)
    prefix = "layers."
    state = {k[len(prefix) :]: v.float() for k, v in tensors.items() if k.startswith(prefix)}
    # names are pystiche's own (conv1_1.weight, ...): no key mapping; strict checks all 13 convs
    mle.load_state_dict(state, strict=True, map_names=False, framework="caffe")
    return mle.eval()


def build_criterion(mle: Any) -> Any:
    """Gatys et al.'s perceptual loss with pystiche's classes, scaled to equal ndstyle's J."""
    from pystiche import loss

    content_loss = loss.FeatureReconstructionLoss(
        mle.extract_encoder(CONTENT_LAYER), score_weight=CONTENT_SCORE_WEIGHT
    )

    def gram_loss(encoder: Any, layer_weight: float) -> Any:
        return loss.GramLoss(encoder, normalize=True, score_weight=layer_weight)

    style_loss = loss.MultiLayerEncodingLoss(
        mle,
        STYLE_LAYERS,
        gram_loss,
        layer_weights=[STYLE_LAYER_WEIGHT] * len(STYLE_LAYERS),
        score_weight=STYLE_SCORE_WEIGHT,
    )
    return loss.PerceptualLoss(content_loss, style_loss)


def _status_mb(key: str) -> float | None:
    """``VmRSS`` / ``VmHWM`` of this process from ``/proc/self/status`` (None without /proc)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def reset_peak_rss() -> float | None:
    """Reset the resident-set high-water mark to the current RSS (as ndstyle's benchmark workers
    do once everything is loaded); return the current RSS in MB."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return None
    return _status_mb("VmRSS")


def peak_rss_mb() -> float:
    """Peak resident set size since the last reset (``VmHWM``; else the lifetime ``ru_maxrss``)."""
    hwm = _status_mb("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def probe(args: argparse.Namespace) -> dict[str, Any]:
    """Write pystiche's preprocessing, activations and loss terms on ``image`` (no optimisation)."""
    import torch
    from safetensors.torch import load_file, save_file

    inputs = load_file(args.inputs)
    mle = build_encoder(args.weights, stock_means=args.stock_caffe_means)
    criterion = build_criterion(mle)
    content, style, image = (inputs[k].float()[None] for k in ("content", "style", "image"))
    criterion.set_content_image(content)
    criterion.set_style_image(style)
    out: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        out["preprocessed"] = mle.preprocessing(image)[0].contiguous()
        layers = sorted({CONTENT_LAYER, *STYLE_LAYERS})
        for layer, act in zip(layers, mle.encode(image, layers)):
            out[layer] = act[0].contiguous()
        terms = criterion(image)
        mle.clear_cache()
    flat = {name: float(value) for name, value in terms.items()}
    total = float(terms)
    out["total"] = torch.tensor(total, dtype=torch.float64)
    save_file(out, args.probe)
    return {"terms": flat, "total": total, "stock_caffe_means": args.stock_caffe_means}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """pystiche's image optimisation with snapshots; returns the JSON report."""
    import pystiche
    import torch
    from pystiche import optim
    from safetensors.torch import load_file, save_file

    device = torch.device(args.device)
    t0 = time.perf_counter()
    inputs = load_file(args.inputs)
    mle = build_encoder(args.weights, stock_means=args.stock_caffe_means).to(device)
    criterion = build_criterion(mle).to(device)
    content = inputs["content"].float()[None].to(device)
    style = inputs["style"].float()[None].to(device)
    load_seconds = time.perf_counter() - t0

    rss_before_mb = reset_peak_rss()
    t0 = time.perf_counter()
    criterion.set_content_image(content)  # targets are encoded here, once (under no_grad)
    criterion.set_style_image(style)
    targets_seconds = time.perf_counter() - t0

    # As in pystiche's gallery: start from the content; pystiche's default optimiser
    # (torch.optim.LBFGS(lr=1, max_iter=1), torch's other defaults: history_size=100).
    input_image = content.clone()
    optimizer = optim.default_image_optimizer(input_image)
    # pystiche 1.0.1's image_optimization has no callback (only a tqdm bar), so the run is split
    # into calls of ``snapshot_every`` steps that share ONE optimizer (its L-BFGS state carries
    # over) and one input tensor (updated in place): the same trajectory as a single call.
    seconds = 0.0
    snapshot_seconds: list[float] = []
    tensors: dict[str, torch.Tensor] = {}
    done = 0
    while done < args.iterations:
        steps = min(args.snapshot_every - done % args.snapshot_every, args.iterations - done)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        optim.image_optimization(input_image, criterion, optimizer=optimizer, num_steps=steps, quiet=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds += time.perf_counter() - t0
        done += steps
        if done % args.snapshot_every == 0 or done == args.iterations:
            snapshot_seconds.append(seconds)
            tensors[f"snapshot_{len(snapshot_seconds) - 1}"] = (
                input_image.detach()[0].clamp(0.0, 1.0).cpu().contiguous().clone()
            )
    raw = input_image.detach()
    tensors["final"] = raw[0].clamp(0.0, 1.0).cpu().contiguous()
    save_file(tensors, args.out)
    return {
        "seconds": seconds,
        "snapshot_seconds": snapshot_seconds,
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_mb": rss_before_mb,
        "pystiche": pystiche.__version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "load_seconds": load_seconds,
        "targets_seconds": targets_seconds,
        "iterations": done,
        "func_evals": int(optimizer.state[optimizer._params[0]].get("func_evals", 0)),
        "raw_range": [float(raw.min()), float(raw.max())],
        "device": str(device),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", help="safetensors with 'content' and 'style' (3,H,W)")
    parser.add_argument("--weights", help="ndstyle's vgg16-offline.safetensors")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--snapshot-every", type=int, default=10)
    parser.add_argument("--out", help="output safetensors (final, snapshot_k)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--stock-caffe-means", action="store_true", help="keep pystiche's own caffe means (not ndstyle's)"
    )
    parser.add_argument("--probe", help="write preprocessing/activations/loss on 'image' and exit")
    parser.add_argument("--version", action="store_true", help="print pystiche's and torch's versions")
    args = parser.parse_args(argv)
    if args.version:
        shim_torchvision()
        import pystiche
        import torch

        print(json.dumps({"pystiche": pystiche.__version__, "torch": torch.__version__}))
        return
    if not args.inputs or not args.weights:
        parser.error("--inputs and --weights are required")
    if args.iterations < 1 or args.snapshot_every < 1:
        parser.error("--iterations and --snapshot-every must be >= 1")
    if not args.probe and not args.out:
        parser.error("--out is required")

    import torch

    torch.set_num_threads(int(os.environ.get("NDSTYLE_BENCH_THREADS", os.cpu_count() or 1)))
    shim_torchvision()
    report = probe(args) if args.probe else run(args)
    sys.stdout.flush()
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()

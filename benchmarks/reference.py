"""The textbook method, written independently of ndstyle's engine, as the benchmark's reference.

Single scale, L-BFGS for a fixed number of iterations, initialised from the content, VGG run up to
the last layer in use, the costs of DESIGN.md (the PyTorch tutorial's recipe with the seeds'
normalisation). Only the network's *weights and layers* are shared with ndstyle (same weights for
a fair comparison); the loop, Grams and costs below are this file's own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn


def _gram(f: torch.Tensor) -> torch.Tensor:
    b, c = f.shape[:2]
    flat = f.reshape(b, c, -1).float()
    return flat @ flat.transpose(1, 2) / flat.shape[-1]


class _Truncated(nn.Module):
    """The extractor's layers up to the deepest one in use, run as a plain sequence."""

    def __init__(
        self,
        layers: Mapping[str, nn.Module],
        preprocess: Callable[[torch.Tensor], torch.Tensor],
        keep: Sequence[str],
    ) -> None:
        super().__init__()
        names = list(layers)
        last = max(names.index(k) for k in keep)
        self.names = names[: last + 1]
        self.body = nn.ModuleList([layers[n] for n in self.names])
        self.preprocess = preprocess
        self.keep = set(keep)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        h = self.preprocess(x)
        for name, module in zip(self.names, self.body):
            h = module(h)
            if name in self.keep:
                out[name] = h
        return out


class TextbookObjective:
    """``J(x) = alpha * J_content + beta * J_style`` of ``(1, 3, H, W)`` inputs, the seeds' costs.

    Content targets and style Grams are computed once, here, from ``(3, H, W)`` images in [0, 1].
    """

    def __init__(
        self,
        extractor: nn.Module,
        content: torch.Tensor,
        style: torch.Tensor,
        *,
        content_layers: Sequence[str],
        style_layers: Mapping[str, float],
        content_weight: float,
        style_weight: float,
    ) -> None:
        self.net = _Truncated(extractor.layers, extractor.preprocess, [*content_layers, *style_layers])
        self.style_layers = dict(style_layers)
        self.content_weight, self.style_weight = content_weight, style_weight
        with torch.no_grad():
            self.content_targets = {k: v for k, v in self.net(content[None]).items() if k in content_layers}
            self.style_targets = {k: _gram(v) for k, v in self.net(style[None]).items() if k in style_layers}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.net(x)
        j_content = sum(
            ((feats[k] - t) ** 2).sum() / (4 * t.shape[1] * t[0, 0].numel())
            for k, t in self.content_targets.items()
        ) / len(self.content_targets)
        j_style = sum(
            w * ((_gram(feats[k]) - self.style_targets[k]) ** 2).sum() / (4 * feats[k].shape[1] ** 2)
            for k, w in self.style_layers.items()
        )
        return self.content_weight * j_content + self.style_weight * j_style


def reference_transfer(
    extractor: nn.Module,
    content: torch.Tensor,
    style: torch.Tensor,
    *,
    content_layers: Sequence[str],
    style_layers: Mapping[str, float],
    content_weight: float,
    style_weight: float,
    iterations: int = 300,
    snapshot_every: int = 10,
) -> tuple[torch.Tensor, list[tuple[float, torch.Tensor]]]:
    """Run the textbook transfer on ``(3, H, W)`` images in [0, 1].

    Returns:
        The final image and ``[(seconds, image)]`` snapshots every ``snapshot_every`` iterations
        (snapshot copies are excluded from the timing; the targets' computation is included).
    """
    start = time.perf_counter()
    objective = TextbookObjective(
        extractor,
        content,
        style,
        content_layers=content_layers,
        style_layers=style_layers,
        content_weight=content_weight,
        style_weight=style_weight,
    )
    x = content[None].clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([x], lr=1.0, max_iter=1, history_size=100)
    snapshots: list[tuple[float, torch.Tensor]] = []
    excluded = 0.0

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = objective(x)
        loss.backward()
        return loss

    for i in range(1, iterations + 1):
        optimizer.step(closure)
        with torch.no_grad():
            x.clamp_(0, 1)
        if i % snapshot_every == 0 or i == iterations:
            t0 = time.perf_counter()
            snapshots.append((t0 - start - excluded, x.detach()[0].clone()))
            excluded += time.perf_counter() - t0
    return x.detach()[0], snapshots

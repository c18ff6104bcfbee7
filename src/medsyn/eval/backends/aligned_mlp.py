"""Gated MLPs of vision towers with their hidden width padded to a multiple of 8, and gate and up in one product.

Qwen2.5-VL's vision MLP is 3,420 units wide. A bf16 row of 3,420 values is 6,840 bytes, not a multiple of 16,
so cuBLAS cannot use its Hopper tensor-core kernels for the three products that touch it and falls back to
slower ones (they took 40 % of the 7B tower's GPU time on an H100, ``benchmarks/results``). Here each such MLP
runs with copies of its weights padded by zero units to 3,424 (gate and up stacked into one product). The
result is the same function: a padded unit's up projection is 0, so its product with the gate is 0, and
down_proj's padded columns are 0. The copies follow the weights' device and dtype (rebuilt after
``model.float()``); weights changed in place afterwards are not seen. Before switching, one MLP runs both ways
on a small random input: a tower whose MLP no longer computes ``down(act(gate(x)) * up(x))`` stays stock, with a log line.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

ALIGN = 8
"""Units of padding: 8 bf16 (or float16) values make the 16 bytes cuBLAS's fast kernels need."""

logger = logging.getLogger(__name__)


def use_aligned_vision_mlp(model: torch.nn.Module) -> int:
    """Run each gated MLP of ``model``'s vision tower whose width is not a multiple of :data:`ALIGN` padded.

    Returns how many MLPs were switched (0 for towers without such MLPs, e.g. Llava's CLIP).
    """
    vision = getattr(getattr(model, "model", model), "visual", None)
    if vision is None:
        return 0
    switched = 0
    for module in vision.modules():
        if _is_unaligned_gated_mlp(module) and "forward" not in vars(module):
            if switched == 0 and (reason := _self_check(module)) is not None:
                logger.warning("aligned vision MLP off, the stock MLPs run: %s", reason)
                return 0
            module.forward = _AlignedForward(module)
            switched += 1
    return switched


def stock_vision_mlp(model: torch.nn.Module) -> None:
    """Undo :func:`use_aligned_vision_mlp`: the MLPs run as transformers defines them (the copies are freed)."""
    vision = getattr(getattr(model, "model", model), "visual", None)
    for module in vision.modules() if vision is not None else []:
        if isinstance(vars(module).get("forward"), _AlignedForward):
            del module.forward


@torch.no_grad()
def _self_check(module: torch.nn.Module) -> str | None:
    """Run one MLP stock and padded on a small random input; why they differ (a release changed the MLP), or None."""
    weight = module.gate_proj.weight
    hidden = torch.randn(4, module.gate_proj.in_features, generator=torch.Generator().manual_seed(0)).to(weight.device, weight.dtype)
    stock, aligned = type(module).forward(module, hidden).float(), _AlignedForward(module)(hidden).float()
    tolerance = 1e-4 if weight.dtype in (torch.float32, torch.float64) else 3e-2
    error = (stock - aligned).abs().max().item() / max(stock.abs().max().item(), 1e-6)
    return None if error <= tolerance else f"self-check: the padded MLP differs from the stock one by {error:.2e} (relative)"


def _is_unaligned_gated_mlp(module: torch.nn.Module) -> bool:
    parts = [getattr(module, name, None) for name in ("gate_proj", "up_proj", "down_proj")]
    if not all(isinstance(p, torch.nn.Linear) for p in parts) or not callable(getattr(module, "act_fn", None)):
        return False
    gate, up, down = parts
    width = gate.out_features
    same_bias = (gate.bias is None) == (up.bias is None)
    return same_bias and up.out_features == width and down.in_features == width and width % ALIGN != 0


class _AlignedForward:
    """``module``'s forward with zero-padded weight copies (made on first use, and again when the weights'
    device or dtype changes)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module
        self.key: tuple | None = None
        self.weights: tuple[torch.Tensor, torch.Tensor | None, torch.Tensor] | None = None

    def __call__(self, hidden_state: torch.Tensor) -> torch.Tensor:
        gate_up, gate_up_bias, down = self._padded()
        gate, up = F.linear(hidden_state, gate_up, gate_up_bias).chunk(2, dim=-1)
        return F.linear(self.module.act_fn(gate) * up, down, self.module.down_proj.bias)

    @torch.no_grad()
    def _padded(self):
        m = self.module
        key = (m.gate_proj.weight.data_ptr(), m.gate_proj.weight.dtype, m.gate_proj.weight.device)
        if key != self.key:
            width = m.gate_proj.out_features
            extra = -width % ALIGN
            pad_rows = lambda t: F.pad(t, (0, 0, 0, extra)) if t.dim() == 2 else F.pad(t, (0, extra))  # noqa: E731
            gate_up = torch.cat([pad_rows(m.gate_proj.weight), pad_rows(m.up_proj.weight)])
            biases = (m.gate_proj.bias, m.up_proj.bias)
            gate_up_bias = None if biases[0] is None else torch.cat([pad_rows(b) for b in biases])
            down = F.pad(m.down_proj.weight, (0, extra))
            self.weights = (gate_up, gate_up_bias, down)
            self.key = key
        return self.weights

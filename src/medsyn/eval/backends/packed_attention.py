"""Window attention of vision towers in a few batched kernel calls instead of one call per window.

Qwen2.5-VL's vision tower attends within 112-pixel windows in 28 of its 32 layers. With
``attn_implementation="sdpa"`` transformers splits the packed sequence and calls SDPA once per
window: 16 windows per 448-px image, so a batch of 16 cases with 8 images makes about 57,000 tiny
kernel calls per forward pass, plus a host sync per layer. :func:`packed_attention` groups the windows
by length and runs one SDPA call per distinct length (usually one), with no mask, so the fastest
kernel applies.

transformers has no public way to hand the packed boundaries to a non-flash attention function (it
passes ``cu_seq_lens_q`` only when the implementation's *name* contains "flash", and from 5.25 on such
a name must also resolve to a flash-attn package or Hub kernel). So nothing is registered by name:
:func:`use_packed_vision_attention` replaces the ``forward`` of each vision attention module, which
receives the boundaries as an argument. That leans on the module's layout (``qkv``, ``proj``,
``num_heads``, ``scaling``, the family's ``apply_rotary_pos_emb_vision``); :func:`packed_support` checks
all of it, and a one-layer self-check against the stock forward, before anything is switched, and the
tower stays stock, with one log line, when any check fails.
"""

from __future__ import annotations

import inspect
import logging
import sys

import torch

PACKED_VISION_MODELS = ("qwen2_5_vl_vision",)
"""Vision configs (``model_type``) whose window-attention towers run packed (tested equal to the stock tower)."""

logger = logging.getLogger(__name__)


def packed_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    cu_seq_lens_q: torch.Tensor | None = None,
    cu_seq_lens_k: torch.Tensor | None = None,
    is_causal: bool = False,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """Block-diagonal attention over the segments ``cu_seq_lens_q`` of a packed (1, heads, tokens, dim) input.

    Returns (1, tokens, heads, dim) like transformers' other attention functions.
    """
    if cu_seq_lens_q is None:
        raise ValueError("packed_attention serves packed vision towers only: no segment boundaries (cu_seq_lens_q) given")
    if cu_seq_lens_k is not None and cu_seq_lens_k is not cu_seq_lens_q and not torch.equal(cu_seq_lens_k, cu_seq_lens_q):
        raise ValueError("packed_attention needs the same segments for queries and keys")
    if query.shape[0] != 1:
        raise ValueError(f"packed_attention expects one packed sequence, got a batch of {query.shape[0]}")
    heads, tokens, dim = query.shape[1], query.shape[2], query.shape[3]
    groups = _segments_by_length(cu_seq_lens_q)
    out = torch.empty(tokens, heads, dim, dtype=query.dtype, device=query.device)
    for length, index in groups:
        # (heads, n, length, dim) -> (n, heads, length, dim): n independent segments in one call
        if index is None:  # equal segments back to back: a view, no gather
            q, k, v = (t[0].unflatten(1, (-1, length)).transpose(0, 1) for t in (query, key, value))
        else:
            q, k, v = (t[0][:, index].transpose(0, 1) for t in (query, key, value))
        kv_heads = k.shape[1]
        if kv_heads != heads:  # grouped-query attention
            k, v = (t.repeat_interleave(heads // kv_heads, dim=1) for t in (k, v))
        attended = torch.nn.functional.scaled_dot_product_attention(
            q, k, v, dropout_p=dropout, scale=scaling, is_causal=is_causal
        ).permute(0, 2, 1, 3)  # (n, length, heads, dim)
        if index is None:
            return attended.reshape(1, tokens, heads, dim), None
        out[index.flatten()] = attended.reshape(-1, heads, dim)
    return out.unsqueeze(0), None


_PLANS: dict[int, tuple[torch.Tensor, list]] = {}  # by id of the boundaries tensor (kept alive here, so ids stay unique)


def _segments_by_length(cu_seqlens: torch.Tensor) -> list[tuple[int, torch.Tensor | None]]:
    """[(length, (n, length) token indices)] for the segments of each distinct length; the indices are
    None when all segments have one length and follow each other (the usual case).

    A vision forward passes the same two boundaries tensors (windows, whole images) to every layer,
    so the host sync of reading them happens twice per forward, not once per layer.
    """
    plan = _PLANS.get(id(cu_seqlens))
    if plan is not None and plan[0] is cu_seqlens:
        return plan[1]
    bounds = cu_seqlens.tolist()
    by_length: dict[int, list[int]] = {}
    for start, end in zip(bounds[:-1], bounds[1:]):
        if end > start:
            by_length.setdefault(end - start, []).append(start)
    groups: list[tuple[int, torch.Tensor | None]] = []
    for length, starts in by_length.items():
        if len(by_length) == 1 and starts == list(range(bounds[0], bounds[-1], length)) and bounds[0] == 0:
            groups.append((length, None))
            continue
        first = torch.tensor(starts, device=cu_seqlens.device)
        groups.append((length, first[:, None] + torch.arange(length, device=cu_seqlens.device)))
    if len(_PLANS) >= 8:
        _PLANS.clear()
    _PLANS[id(cu_seqlens)] = (cu_seqlens, groups)
    return groups


def packed_support(model: torch.nn.Module) -> str | None:
    """Why ``model``'s vision tower cannot run :func:`packed_attention`, or None when it can."""
    vision_config = getattr(model.config, "vision_config", None)
    if vision_config is None or getattr(vision_config, "model_type", "") not in PACKED_VISION_MODELS:
        return "not a tower of a tested family (" + ", ".join(PACKED_VISION_MODELS) + ")"
    if vision_config._attn_implementation != "sdpa":
        return f"the tower runs {vision_config._attn_implementation!r} attention, chosen on purpose"
    modules = _attention_modules(model)
    if not modules:
        return "no vision attention modules (visual.blocks[i].attn) found"
    rotary = getattr(sys.modules.get(type(modules[0]).__module__), "apply_rotary_pos_emb_vision", None)
    if not callable(rotary):
        return f"{type(modules[0]).__module__} has no apply_rotary_pos_emb_vision"
    forward = inspect.signature(type(modules[0]).forward).parameters
    if list(forward)[1:4] != ["hidden_states", "cu_seqlens", "position_embeddings"]:
        return f"{type(modules[0]).__name__}.forward takes {list(forward)[1:]}, not (hidden_states, cu_seqlens, position_embeddings, ...)"
    for module in modules:
        parts = (getattr(module, "qkv", None), getattr(module, "proj", None))
        if not all(isinstance(p, torch.nn.Linear) for p in parts) or not isinstance(getattr(module, "num_heads", None), int):
            return f"{type(module).__name__} has no qkv/proj Linear layers or no num_heads"
        if not isinstance(getattr(module, "scaling", None), float):
            return f"{type(module).__name__} has no float scaling"
    return _self_check(modules[0], rotary)


def use_packed_vision_attention(model: torch.nn.Module) -> bool:
    """Switch ``model``'s vision tower to :func:`packed_attention` where :func:`packed_support` allows it.

    Returns whether it is switched. A tower that cannot be switched stays stock; a tower of a tested
    family that fails a check says why in one log line (Llava's CLIP and other families stay stock silently).
    """
    if any(isinstance(vars(m).get("forward"), _PackedForward) for m in _attention_modules(model)):
        return True
    reason = packed_support(model)
    if reason is not None:
        if getattr(getattr(model.config, "vision_config", None), "model_type", "") in PACKED_VISION_MODELS:
            logger.warning("packed vision attention off, the stock tower runs: %s", reason)
        return False
    rotary = getattr(sys.modules[type(_attention_modules(model)[0]).__module__], "apply_rotary_pos_emb_vision")
    for module in _attention_modules(model):
        module.forward = _PackedForward(module, rotary)
    return True


def stock_vision_attention(model: torch.nn.Module) -> None:
    """Undo :func:`use_packed_vision_attention`: the attention modules run as transformers defines them."""
    for module in _attention_modules(model):
        if isinstance(vars(module).get("forward"), _PackedForward):
            del module.forward


def _attention_modules(model: torch.nn.Module) -> list[torch.nn.Module]:
    vision = getattr(getattr(model, "model", model), "visual", None)
    blocks = getattr(vision, "blocks", None) or []
    return [block.attn for block in blocks if isinstance(getattr(block, "attn", None), torch.nn.Module)]


class _PackedForward:
    """A vision attention module's forward with its segments in one SDPA call per segment length."""

    def __init__(self, module: torch.nn.Module, rotary) -> None:
        self.module = module
        self.rotary = rotary

    def __call__(
        self,
        hidden_states: torch.Tensor,
        cu_seqlens: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        max_seqlen: int | None = None,
        **kwargs,
    ) -> torch.Tensor:
        m = self.module
        tokens = hidden_states.shape[0]
        query, key, value = m.qkv(hidden_states).reshape(tokens, 3, m.num_heads, -1).permute(1, 0, 2, 3).unbind(0)
        query, key = self.rotary(query, key, *position_embeddings)
        query, key, value = (t.transpose(0, 1).unsqueeze(0) for t in (query, key, value))
        out, _ = packed_attention(m, query, key, value, None, scaling=m.scaling, cu_seq_lens_q=cu_seqlens)
        return m.proj(out.reshape(tokens, -1).contiguous())


@torch.no_grad()
def _self_check(module: torch.nn.Module, rotary) -> str | None:
    """Run one attention layer stock and packed on a small random input (two segments); the reason they differ, or None."""
    weight = module.qkv.weight
    head_dim = module.qkv.out_features // 3 // module.num_heads
    generator = torch.Generator().manual_seed(0)
    make = lambda *shape: torch.randn(*shape, generator=generator).to(weight.device, weight.dtype)  # noqa: E731
    hidden, cos, sin = make(24, module.qkv.in_features), make(24, head_dim), make(24, head_dim)
    bounds = torch.tensor([0, 8, 24], dtype=torch.int32, device=weight.device)
    try:
        stock = type(module).forward(module, hidden, cu_seqlens=bounds, position_embeddings=(cos, sin))
        packed = _PackedForward(module, rotary)(hidden, bounds, (cos, sin))
    except Exception as exc:  # noqa: BLE001 - any failure means the layout is not the one this code knows
        return f"self-check failed: {type(exc).__name__}: {exc}"
    tolerance = 1e-4 if weight.dtype in (torch.float32, torch.float64) else 3e-2
    error = (stock.float() - packed.float()).abs().max().item() / max(stock.float().abs().max().item(), 1e-6)
    return None if error <= tolerance else f"self-check: packed output differs from the stock layer by {error:.2e} (relative)"

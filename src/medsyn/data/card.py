"""The dataset card: ``dataset_card.md`` filled with a build's counts, YAML configs, languages and features.

The builder calls :func:`render_card` with per-config statistics computed from the rows it wrote,
so the card on the Hub never drifts from the files it describes. Each config's ``description`` names the
build's revision: ``datasets`` keys its cache of a folder on the configs, so a rebuilt folder is never
served from the cache of an earlier build, and loaders compare it with manifest.json (:func:`card_revision`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from datasets.info import DatasetInfo, DatasetInfosDict
from datasets.splits import SplitDict, SplitInfo
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard

from medsyn.data.citation import CITATION
from medsyn.data.schema import FEATURES, LANGUAGES, VISUAL_CE_TYPES

SPLIT = "test"
DEFAULT_CONFIG = "en"
BLOCKS = ("headline", "stats", "configs", "example", "ce_types", "specialties", "citation")
"""Machine-filled blocks of the card body, each between ``<!-- medsyn:NAME -->`` and ``<!-- /medsyn:NAME -->``."""

REVISION_RE = re.compile(r"revision ([0-9a-f]{64})\b")
"""The revision in a config's description."""
STAT_KEYS = ("n_cases", "n_images", "ce_types", "images_per_type", "specialties", "n_bytes", "example")
EXAMPLE_TEXT_LIMIT = 300
"""Longer strings of the example row are shortened on the card (the data keeps them whole)."""

# The Hub's size_categories buckets, by upper bound of the row count.
_SIZE_BUCKETS = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
)


def data_files_pattern(config: str) -> str:
    """The repo-relative glob of a config's Parquet files (``en/test-*.parquet``)."""
    return f"{config}/{SPLIT}-*.parquet"


def size_category(n_rows: int) -> str:
    """The Hub's ``size_categories`` value for a dataset of ``n_rows`` rows."""
    for bound, name in _SIZE_BUCKETS:
        if n_rows < bound:
            return name
    return "n>10M"


def config_description(config: str, revision: str) -> str:
    """A config's ``description`` on the card: it names the build's revision (the sha256 of manifest.json)."""
    return f"MEDSYN {config} cases, dataset revision {revision} (the sha256 of manifest.json)"


def card_revision(text: str, config: str) -> str | None:
    """The revision that the card ``text`` gives config ``config``; None when it names none."""
    configs = MetadataConfigs.from_dataset_card_data(DatasetCard(text).data)
    match = REVISION_RE.search(str(configs.get(config, {}).get("description", "")))
    return match.group(1) if match else None


def render_card(template: str, stats: dict[str, dict], revision: str) -> str:
    """Fill ``template`` (the text of dataset_card.md) with YAML configs/features and the counts in ``stats``.

    ``stats`` maps each non-empty config ("en", "zh") to its counts (see STAT_KEYS); ``revision`` is the
    build's (see :func:`config_description`). Rendering is deterministic, and rendering an already-rendered
    card again gives the same text.
    """
    _check_stats(stats)
    stats = {config: stats[config] for config in LANGUAGES if config in stats}
    card = DatasetCard(template)
    data = card.data
    for key in ("configs", "dataset_info", "size_categories"):
        data.pop(key, None)
    data["language"] = list(stats)
    data["size_categories"] = [size_category(sum(s["n_cases"] for s in stats.values()))]
    MetadataConfigs(
        {
            config: {
                "data_files": [{"split": SPLIT, "path": data_files_pattern(config)}],
                "description": config_description(config, revision),
                **({"default": True} if config == DEFAULT_CONFIG else {}),
            }
            for config in stats
        }
    ).to_dataset_card_data(data)
    DatasetInfosDict({config: _dataset_info(config, s) for config, s in stats.items()}).to_dataset_card_data(data)
    body = card.text
    tables = {
        "headline": _headline(stats),
        "stats": _stats_table(stats),
        "configs": _configs_line(stats),
        "example": _example(stats),
        "ce_types": _ce_table(stats),
        "specialties": _specialty_table(stats),
        "citation": f"```bibtex\n{CITATION}\n```",
    }
    for name, content in tables.items():
        body = _fill_block(body, name, content)
    card.text = body
    return str(card)


def _check_stats(stats: dict[str, dict]) -> None:
    if not stats:
        raise ValueError("stats: no config with cases; a card needs at least one of " + ", ".join(LANGUAGES))
    for config, s in stats.items():
        if config not in LANGUAGES:
            raise ValueError(f"stats: unknown config {config!r} (expected one of {', '.join(LANGUAGES)})")
        missing = [k for k in STAT_KEYS if k not in s]
        if missing:
            raise ValueError(f"stats[{config!r}]: missing {', '.join(missing)}")
        if s["n_cases"] < 1:
            raise ValueError(f"stats[{config!r}]: n_cases is {s['n_cases']}; leave empty configs out")
        for key in ("ce_types", "images_per_type"):
            unknown = sorted(set(s[key]) - set(VISUAL_CE_TYPES))
            if unknown:
                raise ValueError(f"stats[{config!r}][{key!r}]: unknown CE type(s) {', '.join(unknown)}")


def _dataset_info(config: str, s: dict[str, Any]) -> DatasetInfo:
    splits = SplitDict()
    splits.add(SplitInfo(name=SPLIT, num_bytes=s["n_bytes"], num_examples=s["n_cases"]))
    return DatasetInfo(
        features=FEATURES.copy(),
        splits=splits,
        download_size=s["n_bytes"],
        dataset_size=s["n_bytes"],
        config_name=config,
    )


def _fill_block(body: str, name: str, content: str) -> str:
    pattern = re.compile(rf"(<!-- medsyn:{name} -->\n).*?(<!-- /medsyn:{name} -->)", re.DOTALL)
    if not pattern.search(body):
        raise ValueError(f"card template: block {name!r} missing (<!-- medsyn:{name} --> ... <!-- /medsyn:{name} -->)")
    return pattern.sub(lambda m: m.group(1) + content.rstrip("\n") + "\n" + m.group(2), body, count=1)


def format_size(n_bytes: int) -> str:
    """Bytes as a short decimal size: ``812 B``, ``123.5 kB``, ``2.2 MB``."""
    value = float(n_bytes)
    for unit in ("B", "kB", "MB"):
        if value < 1000:
            return f"{n_bytes} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _headline(stats: dict[str, dict]) -> str:
    n_cases = sum(s["n_cases"] for s in stats.values())
    n_images = sum(s["n_images"] for s in stats.values())
    parts = ", ".join(f"{s['n_cases']} {config}" for config, s in stats.items())
    return f"**This build:** {n_cases} cases ({parts}) with {n_images} images, one `test` split per config."


def _configs_line(stats: dict[str, dict]) -> str:
    names = [f"`{config}`" + (" (default)" if config == DEFAULT_CONFIG else "") for config in stats]
    if len(names) == 1:
        return f"Config: {names[0]}, one `{SPLIT}` split."
    return f"Configs: {', '.join(names[:-1])} and {names[-1]}, one `{SPLIT}` split each."


def _stats_table(stats: dict[str, dict]) -> str:
    def row(name: str, cases: int, images: int, type_cases: int, n_bytes: int) -> list[Any]:
        return [name, cases, images, f"{images / cases:.2f}", f"{type_cases / cases:.2f}", format_size(n_bytes)]

    rows = [
        row(f"`{config}`", s["n_cases"], s["n_images"], sum(s["ce_types"].values()), s["n_bytes"])
        for config, s in stats.items()
    ]
    if len(stats) > 1:
        rows.append(
            row(
                "all",
                sum(s["n_cases"] for s in stats.values()),
                sum(s["n_images"] for s in stats.values()),
                sum(sum(s["ce_types"].values()) for s in stats.values()),
                sum(s["n_bytes"] for s in stats.values()),
            )
        )
    header = ["config", "cases", "images", "images per case", "visual CE types per case", "Parquet size"]
    return _table(header, rows)


def _ce_table(stats: dict[str, dict]) -> str:
    header = ["CE type"] + [f"{label} ({config})" for config in stats for label in ("cases", "images")]
    rows = [
        [f"`{ce_type}`"] + [s[key].get(ce_type, 0) for s in stats.values() for key in ("ce_types", "images_per_type")]
        for ce_type in VISUAL_CE_TYPES
    ]
    return _table(header, rows)


def _specialty_table(stats: dict[str, dict]) -> str:
    names = {name for s in stats.values() for name in s["specialties"]}
    totals = {name: sum(s["specialties"].get(name, 0) for s in stats.values()) for name in names}
    order = sorted(names, key=lambda name: (-totals[name], name))
    header = ["specialty"] + [f"cases ({config})" for config in stats] + (["total"] if len(stats) > 1 else [])
    rows = [
        [name or "(unspecified)"]
        + [s["specialties"].get(name, 0) for s in stats.values()]
        + ([totals[name]] if len(stats) > 1 else [])
        for name in order
    ]
    return _table(header, rows)


def _shorten(value: Any) -> Any:
    if isinstance(value, str) and len(value) > EXAMPLE_TEXT_LIMIT:
        return value[:EXAMPLE_TEXT_LIMIT] + " …"
    if isinstance(value, list):
        return [_shorten(v) for v in value]
    if isinstance(value, dict):
        return {k: _shorten(v) for k, v in value.items()}
    return value


def _example(stats: dict[str, dict]) -> str:
    config = DEFAULT_CONFIG if DEFAULT_CONFIG in stats else next(iter(stats))
    row = json.dumps(_shorten(stats[config]["example"]), ensure_ascii=False, indent=2)
    return (
        f"One row of the `{config}` config (images shown as a count; texts longer than "
        f"{EXAMPLE_TEXT_LIMIT} characters shortened):\n\n```json\n{row}\n```"
    )

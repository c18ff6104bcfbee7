"""accelerate's big-model loading (``device_map``, ``max_memory`` model args) on a CPU: the model spread by
accelerate scores as the model loaded whole, inputs go where its embeddings run, and bad settings are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from medsyn.eval.backends.transformers_vlm import MedsynVLM, VLMConfig
from medsyn.eval.synthetic import synthetic_rows
from medsyn.eval.tasks import make_doc
from medsyn.eval.tiny_model import build_tiny_model

SETTINGS = "dtype=float32,use_response_cache=False"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def docs() -> list:
    from medsyn.data.schema import es_conditions

    row = synthetic_rows(1, 4, 64, 30)[0]
    return [make_doc(row, condition, "es", "t:es") for condition in es_conditions(row["evidence_types"])[:3]]


@pytest.fixture(scope="module")
def whole(folder: Path, docs) -> torch.Tensor:
    """The ES posteriors of the model loaded whole onto the CPU."""
    return _posteriors(_backend(folder, "device=cpu"), docs)


def _backend(folder: Path, args: str) -> MedsynVLM:
    """The backend as ``--model-args`` builds it."""
    return MedsynVLM(VLMConfig.from_args(f"model_name={folder},{args},{SETTINGS}"))


def _posteriors(backend: MedsynVLM, docs) -> torch.Tensor:
    return torch.tensor([r.logprobs for r in backend.loglikelihood(docs)], dtype=torch.float64)


@pytest.mark.parametrize("args", ["device_map=auto", "device_map=auto,max_memory=cpu:1GiB"])
def test_a_model_loaded_by_accelerate_scores_as_the_model_loaded_whole(folder: Path, docs, whole, args: str) -> None:
    backend = _backend(folder, args)
    assert backend.device == backend.model.get_input_embeddings().weight.device
    torch.testing.assert_close(_posteriors(backend, docs), whole, atol=1e-5, rtol=0)


def test_max_memory_reaches_accelerate(folder: Path) -> None:
    """1 KiB of CPU memory holds no layer: accelerate offloads the whole model to disk (were the limit dropped,
    the model would load into memory)."""
    assert _backend(folder, "device_map=auto,max_memory=cpu:1KiB").model.hf_device_map == {"": "disk"}


def test_a_model_with_offloaded_embeddings_scores_where_they_run(folder: Path, docs, whole) -> None:
    backend = _backend(folder, "device_map=auto,max_memory=cpu:1KiB")
    torch.testing.assert_close(_posteriors(backend, docs), whole, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("spec", "message"),
    [("cpu=1GiB", "is not DEVICE:LIMIT"), ("0:70GiB;cpu", "'cpu' is not DEVICE:LIMIT"),
     ("cpu:lots", "lots"), ("gpu0:1GiB", "gpu0")],  # fmt: skip
)
def test_a_bad_max_memory_spec_is_a_clear_error(folder: Path, spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _backend(folder, f"device_map=auto,max_memory={spec}")


def test_max_memory_without_device_map_is_an_error(folder: Path) -> None:
    with pytest.raises(ValueError, match="max_memory applies with device_map"):
        _backend(folder, "device=cpu,max_memory=cpu:1GiB")

"""Loading a model folder: its processor (image-only where the video processor cannot be built) and its weights.

Many families ship a video processor that needs torchvision (Qwen2/2.5/3-VL, LLaVA-OneVision, InternVL, SmolVLM,
GLM-4V). PyPI's torchvision is a CUDA build that does not import beside the CPU torch wheel, so on a CPU machine
``AutoProcessor.from_pretrained`` fails for them although MEDSYN shows images only. :func:`load_processor` then
builds the same processor class without its video processor (one log line) and checks that it processes an image;
any other failure names what to install.
"""

from __future__ import annotations

import inspect
import json
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class ProcessorUnavailable(ImportError):
    """The model's processor cannot be built in this environment."""


def load_processor(path: str | Path):
    """``AutoProcessor.from_pretrained(path)``, or the same class without its video processor when only that fails."""
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(path)
    except ImportError as error:
        if "torchvision" not in str(error).lower():
            raise ProcessorUnavailable(f"{path}: the processor cannot be built: {error}") from error
        cause = error
    except ValueError as error:  # an image processor that exists only in a torchvision version
        if "torchvision" not in str(error).lower():
            raise
        cause = error
    cls = _processor_class(path)
    if cls is None or "video_processor" not in inspect.signature(cls.__init__).parameters:
        raise ProcessorUnavailable(
            f"{path}: the processor needs torchvision ({cause}); install a torchvision build that matches your torch "
            "(pip install torchvision --index-url https://download.pytorch.org/whl/cpu on a CPU machine)"
        ) from cause
    processor = image_only(cls).from_pretrained(path)
    logger.warning("%s: %s without its video processor (it needs torchvision, which is not installed; MEDSYN shows images only)",
                   path, cls.__name__)  # fmt: skip
    return processor


def image_only(cls):
    """A subclass of the processor class ``cls`` that is built without a video processor, keeping every other
    setting ``cls`` takes (``num_image_tokens``, ``image_seq_length``, ...) when loaded from a saved config."""
    if not callable(getattr(cls, "validate_init_kwargs", None)):
        raise ProcessorUnavailable(f"{cls.__name__}: this transformers has no ProcessorMixin.validate_init_kwargs, which "
                                   "the image-only fallback extends; install torchvision to build the whole processor")  # fmt: skip
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    settings = tuple(name for name, parameter in inspect.signature(cls.__init__).parameters.items()
                     if parameter.kind in kinds and name not in ("self", "video_processor"))  # fmt: skip

    class ImageOnly(cls):
        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            super().__init__(image_processor=image_processor, tokenizer=tokenizer, video_processor=None, chat_template=chat_template, **kwargs)

        @staticmethod
        def validate_init_kwargs(processor_config, valid_kwargs):
            """transformers passes on only the saved settings ``__init__`` names; these are ``cls``'s."""
            return cls.validate_init_kwargs(processor_config=processor_config, valid_kwargs=(*valid_kwargs, *settings))

    ImageOnly.__name__ = ImageOnly.__qualname__ = f"ImageOnly{cls.__name__}"
    return ImageOnly


def _processor_class(path: str | Path):
    """The processor class a folder names (processor_config.json, else preprocessor_config.json), or None."""
    import transformers

    folder = Path(path)
    for name in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json"):
        file = folder / name
        if file.is_file():
            class_name = json.loads(file.read_text(encoding="utf-8")).get("processor_class")
            if class_name:
                return getattr(transformers, class_name.removeprefix("ImageOnly"), None)
    from transformers import AutoConfig
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES

    name = PROCESSOR_MAPPING_NAMES.get(AutoConfig.from_pretrained(path).model_type)
    return getattr(transformers, name, None) if name else None


def parse_max_memory(spec: str | None) -> dict[Any, str] | None:
    """accelerate's ``max_memory`` from the model-args form ``0:70GiB;1:70GiB;cpu:200GiB`` (``;`` because ``,`` separates args).

    >>> parse_max_memory("0:70GiB;1:70GiB;cpu:200GiB")
    {0: '70GiB', 1: '70GiB', 'cpu': '200GiB'}
    """
    from accelerate.utils import convert_file_size_to_int

    if not spec:
        return None
    limits: dict[Any, str] = {}
    for item in spec.split(";"):
        device, sep, limit = item.partition(":")
        if not sep or not device.strip() or not limit.strip():
            raise ValueError(f"max_memory: {item!r} is not DEVICE:LIMIT (e.g. 0:70GiB;cpu:200GiB)")
        device = device.strip()
        try:
            convert_file_size_to_int(limit.strip())
        except ValueError:
            raise ValueError(f"max_memory: {limit.strip()!r} of {device} is not a size (e.g. 70GiB, 500MB)") from None
        limits[int(device) if device.isdigit() else device] = limit.strip()
    return limits

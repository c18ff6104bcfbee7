"""The MEDSYN dataset builder and writer, for raw case folders (DESIGN §3 -> §4).

Both live in the `medsyn` package; this file is the entry point the release layout names.
datasets 5 no longer runs loading scripts, so drive the builder from code or use the writer:

    from medsyn_builder import MedsynBuilder, build_dataset
    builder = MedsynBuilder(config_name="zh", data_dir="dataset_builder/sample")
    builder.download_and_prepare(); ds = builder.as_dataset(split="test")
    build_dataset("dataset_builder/sample", "medsyn")   # = `medsyn build dataset_builder/sample medsyn`
"""

from medsyn.data.build import build_dataset
from medsyn.data.hf_builder import MedsynBuilder

__all__ = ["MedsynBuilder", "build_dataset"]

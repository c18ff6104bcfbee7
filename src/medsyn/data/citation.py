"""The one citation of MEDSYN: the builder's DatasetInfo, the dataset card and the metric module quote it."""

CITATION = """\
@inproceedings{medsyn2026,
  title         = {{MEDSYN}: A Multilingual, Multimodal Benchmark of Complex Clinical Cases},
  author        = {{MEDSYN authors}},
  booktitle     = {Findings of the Association for Computational Linguistics: ACL 2026},
  year          = {2026},
  eprint        = {2602.21950},
  archivePrefix = {arXiv},
  url           = {https://arxiv.org/abs/2602.21950}
}"""

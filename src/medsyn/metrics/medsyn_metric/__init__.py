"""The ``evaluate`` module's folder: ``evaluate.load(<this folder>, CONFIG)`` loads ``medsyn_metric.py``.

It ships in the package, so scoring works from any install (``medsyn.eval.results``); the Hub folder
``metrics/medsyn_metric/`` of a source checkout links to the same file.
"""

"""The evaluation layer: prompts (:mod:`.prompts`), the LightEval tasks (:mod:`.tasks`, :mod:`.es_index`),
the in-process pipeline (:mod:`.pipeline`), model backends (:mod:`.backends`), results and report
(:mod:`.results`, :mod:`.report`), lighteval fixes (:mod:`.lighteval_compat`), and offline test models
and workloads (:mod:`.tiny_model`, :mod:`.synthetic`).

It imports :mod:`medsyn.data` and :mod:`medsyn.metrics`.
"""

"""The metrics layer: FDx answer extraction (:mod:`.answers`), DDx lists (:mod:`.ddx`), DDx judges
(:mod:`.judges`), Evidence Sensitivity and its failure rules (:mod:`.sensitivity`), statistics
(:mod:`.stats`), scoring (:mod:`.scoring`) and the results file's schema (:mod:`.results_schema`).
``medsyn_metric/`` holds the ``evaluate`` module over them.

It imports only :mod:`medsyn.data`, and never torch, transformers or lighteval: the ``evaluate``
module and the leaderboard import it.
"""

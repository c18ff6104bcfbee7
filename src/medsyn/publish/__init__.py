"""The publishing layer: Hub uploads (:mod:`.hub`) and the leaderboard's data side (:mod:`.leaderboard`).

It imports :mod:`medsyn.data` and :mod:`medsyn.metrics`, never :mod:`medsyn.eval`.
"""

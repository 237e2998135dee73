"""On-disk formats of the datasets hoi_adapt itself writes: the synthetic world and adapted exports.

They live with the loaders that read them (``data.datasets.synthetic``, ``data.datasets.adapted``); the
writers (``synth.generator``, ``export``) sit above and import them from here.
"""

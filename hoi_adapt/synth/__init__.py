"""The synthetic hand-object world: the embedded default data of every job (see ``generator.py``)."""

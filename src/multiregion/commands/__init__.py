"""Command groups of the ``multiregion`` command, one module each with ``register(commands)``."""

"""The documented errors of :mod:`core.embedders` (no heavy imports)."""
from __future__ import annotations


class EmbedderError(Exception):
    """Base class of every error raised by :mod:`core.embedders`."""


class UnknownModelError(EmbedderError, KeyError, ValueError):
    """A model name that is neither in the registry nor a shipped/cached embedding file."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class NotComputedError(EmbedderError, LookupError):
    """The model is known but its embeddings are neither shipped nor cached. The message has the command."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class MissingWeightsError(EmbedderError, RuntimeError):
    """The model's weights cannot be had here (package not installed, hub unreachable, bad local path).

    The message names the model and the exact command or package that provides the weights.
    """


class BadOptionError(EmbedderError, ValueError):
    """An invalid embedding option (pooling, layer, dtype, batch size) for this model family."""

"""MEDSYN: a multilingual, multimodal benchmark of complex clinical cases."""

__version__ = "0.1.0"

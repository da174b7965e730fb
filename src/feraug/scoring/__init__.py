"""Scoring generators with an independent judge: ``feraug gan score`` (:func:`score_generator`)."""

from feraug.scoring.score import score_generator

__all__ = ["score_generator"]

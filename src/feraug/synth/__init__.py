"""Synthetic training sets from trained generators (``feraug synth``).

``plan`` says what to make, ``filters`` decides what to keep (classifier confidence,
distance to the nearest real training face), ``safety`` decides where it may be written and
``build`` does the work and writes the manifest. Loading the result back is
:mod:`feraug.data.synthetic`.
"""

from feraug.synth.build import build_synthetic_set
from feraug.synth.plan import SampleGenerator, SynthPlan, make_plan

__all__ = ["SampleGenerator", "SynthPlan", "build_synthetic_set", "make_plan"]

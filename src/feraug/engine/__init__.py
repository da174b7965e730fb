"""The run engine: what training a classifier and training a generator share.

- :mod:`~feraug.engine.device`: ``Engine`` (device, bf16 autocast, torchrun data parallelism),
  ``make_engine``, ``choose_device``;
- :mod:`~feraug.engine.run_folder`: beginning a run in its folder (new, resumed, or restarted
  from step 0), its manifest and its JSON-lines log;
- :mod:`~feraug.engine.rng`: RNG states captured into checkpoints and restored on resume;
- :mod:`~feraug.engine.generator_loop`: ``train_generator``, the loop that trains any
  registered generator (classifiers are fitted by :func:`feraug.classifier.trainer.fit`).

Nothing is imported here, so that a classifier run does not import the generators.
"""

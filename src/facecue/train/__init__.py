"""Training, exporting and shipping the models, one job a module.

- expression: ``expression`` trains a run, ``ship_expression`` builds the shipped model.
- keypoints: ``keypoints`` trains a run, ``ship_keypoints`` builds the shipped model;
  ``backbone`` pretrains its conv stages on FER2013, ``teacher`` labels more faces with
  finished runs, ``lineage`` adds up the training time behind a model.
- shared: ``models`` (the nets), ``augment``, ``losses``, ``loop`` (the training loop and run
  folders), ``export`` (ONNX, int8), ``fastgraph`` (the faster int8 graph), ``ship`` (writing
  a shipped model with its card).

Needs the train extra (``pip install "facecue[train]"``: torch, onnx); the runtime never
imports it."""

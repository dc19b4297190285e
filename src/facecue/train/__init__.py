"""Training, exporting and shipping the models.

Needs the train extra (``pip install "facecue[train]"``: torch, onnx); the runtime never
imports it."""

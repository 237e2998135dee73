"""Deployment: E and G exported to ONNX (with a numerical check against PyTorch) and run with ONNX Runtime.

Sits above ``checkpoints`` (it exports what a checkpoint holds and reuses its ``Predictor`` interface) and
below the applications, which can take an :class:`~hoi_adapt.deploy.runtime.OnnxPredictor` wherever they take
a ``Predictor``. onnx/onnxruntime are imported only when a function needs them.
"""

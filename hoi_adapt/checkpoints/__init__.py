"""Trained models on disk: what a hoi_adapt checkpoint holds, reading it safely, rebuilding its networks.

A service below the applications (training, evaluate, predict, export all use it) and above the networks;
it never imports the Lightning layer, so tools that only run a model do not depend on how it was trained.
"""

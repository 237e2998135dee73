"""Third-party hand estimators ("peers") that we compare against, each run in its own virtual environment.

A peer's dependencies clash with ours (MediaPipe pins protobuf<5 and a numpy 1.x ABI), so a peer never gets
imported here: a host module (e.g. :mod:`hoi_adapt.peers.mediapipe`) runs a standalone worker script with the
peer venv's interpreter and exchanges JSON files with it, then converts the results to our conventions.
"""

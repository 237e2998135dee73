"""Pictures people look at: skeleton drawing, panels of a batch, the hand model's pose grid.

Above the hand model and the renderer (it draws with both), below every application that writes a PNG
(training callbacks, the demo report, predict, export, the synthetic world's contact sheet).
"""

"""annotator: a desktop labelling assistant for semantic segmentation.

The core packages (``engine``, ``project``, ``formats``, ``metrics``) never import Qt; only
``annotator.gui`` does. ``training`` (top level) builds on the core.
"""

__version__ = "0.1.0"

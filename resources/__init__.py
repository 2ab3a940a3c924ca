"""Data files shipped with annotator (installed as ``annotator.resources``)."""

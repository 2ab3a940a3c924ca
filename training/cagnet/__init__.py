"""CaGNet (MODELS.md section 3, seed paper 000) in the retraining loop: a contextual module, a
generator from CLIP text embeddings + contextual latent codes to the head's pixel features, and a
discriminator sharing the head's trunk; the head learns rows for classes nobody labelled yet from
generated features (pixel-wise and in coherent 3x3 blocks), then from its own confident
predictions (self-training). Qt-free; see ``docs/interfaces.md`` ("CaGNet").
"""

from training.cagnet.fit import fit_generative
from training.cagnet.settings import CaGNetSettings
from training.cagnet.step import GenerativeStep, class_text_embeddings

__all__ = ["CaGNetSettings", "GenerativeStep", "class_text_embeddings", "fit_generative"]

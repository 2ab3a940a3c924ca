"""Running annotator beyond one process: batch proposals on a Ray cluster
(:mod:`annotator.cluster.ray_propose`) and retraining with torch.distributed. No Qt here."""

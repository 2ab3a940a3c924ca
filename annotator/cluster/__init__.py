"""Running annotator beyond one process: batch proposals on a Ray cluster
(:mod:`annotator.cluster.ray_propose`) and retraining with torch.distributed
(:mod:`annotator.cluster.distributed`). Nothing here imports Qt; each module imports its engine
(Ray, torch.distributed) inside the functions that need it, so ``annotator --help`` stays fast."""

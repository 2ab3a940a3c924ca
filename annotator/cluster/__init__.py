"""Running annotator beyond one process: retraining with torch.distributed (``distributed``) and
batch proposals on Ray. Nothing here imports Qt; each module imports its engine (torch.distributed,
Ray) inside the functions that need it, so ``annotator --help`` stays fast."""

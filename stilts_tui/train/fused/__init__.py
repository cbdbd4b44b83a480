"""Fused trials (README.md, "Fused trials"): several runs that share their model, starting
checkpoint, data, max length, epochs and device batch train in one worker process as one fused
model. Each trial keeps its own weights as its own module, optimizer, schedule, data order and
dropout stream; one forward and one backward per micro-batch go through all of them at once
(`torch.func.functional_call` under `vmap`, PyTorch's model-ensembling recipe). Each trial writes
its own events, resumable state and checkpoint, exactly as the run alone would.

rules.py   which runs may fuse, and why a run may not (no torch: the runner uses it too)
dropout.py per-trial dropout streams that do not depend on the other trials of the group
attention.py transformers' attention as vmap needs it (mask always built, dropout per trial)
forward.py the fused forward and loss over the trials' own parameters
trial.py   one trial: the solo loop's bookkeeping, driven one micro-batch at a time
group.py   the driver: the trials in lockstep, each leaving when it is done"""

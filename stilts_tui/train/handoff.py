"""Building a run's model, and the hand-off from an intermediate checkpoint (README.md, "The recipe
and the hand-off"; jiant's in docs/pruksachatkun2020.md, "The study's settings and the restart chain").

The rule, applied to state-dict groups:
  encoder   (everything under the base model but its pooler)  always carried over
  pooler + classifier                                          carried over only for MC -> MC
  otherwise the target starts from the pretrained model's pooler (where the architecture has
  one) and a freshly initialised classifier, exactly as the `none` baseline does for the seed.

Keeping MC -> MC heads is what makes zero-shot evaluation (Table 4) possible. A target with jiant's
heads (the second study) takes the encoder only, even from an intermediate of the same task:
jiant loads the checkpoint with ``skip_task_models=[task.name]`` (jiant/__main__.py l. 470,
utils.py l. 361-372), so the target's own task module is always fresh."""

from __future__ import annotations

import json
from pathlib import Path

from stilts_tui.diskspace import inject
from stilts_tui.errors import StiltsError
from stilts_tui.models import resolve_model
from stilts_tui.tasks import Task
from stilts_tui.tasks.base import SPAN_HEADS
from stilts_tui.train.checkpoint import load_checkpoint_state
from stilts_tui.train.warm import WarmCache

META_FILE = "stilts_checkpoint.json"
JIANT_DROPOUT = 0.1  # base_roberta.conf l. 24: the sentence encoder's dropout when a run sets none


def model_class(task: Task):
    from transformers import AutoModelForMultipleChoice, AutoModelForSequenceClassification

    return AutoModelForMultipleChoice if task.head == "multiple_choice" else AutoModelForSequenceClassification


def _group(key: str, prefix: str) -> str:
    if key.startswith(prefix + "pooler."):
        return "pooler"
    if key.startswith(prefix):
        return "encoder"
    return "classifier"


def _from_pretrained(task: Task, base: str, attn: str | None, cache: WarmCache | None):
    config_kwargs = {"num_labels": task.num_labels} if task.head == "classification" else {}
    load_kwargs = {"attn_implementation": attn} if attn else {}
    state = cache.state(base) if cache is not None else None
    if state is None:
        return model_class(task).from_pretrained(base, **config_kwargs, **load_kwargs)
    from transformers import AutoConfig

    # The same loading path as from a folder (same missing-key initialisation, same RNG use),
    # with the weights taken from memory; cloned because the model must not write into the cache.
    config = AutoConfig.from_pretrained(base, **config_kwargs)
    concrete = model_class(task)._model_mapping[type(config)]
    model = concrete.from_pretrained(None, config=config, state_dict={k: v.clone() for k, v in state.items()},
                                     **load_kwargs)
    model.config.name_or_path = base
    return model


def uses_study_head(task: Task, head_style: str, transfer: str = "finetune") -> bool:
    """Whether a run's model is an encoder with one of jiant's heads (train/heads.py) rather than
    transformers' own sequence-classification / multiple-choice model."""
    return task.head in SPAN_HEADS or head_style == "jiant" or transfer == "frozen_mix"


def build_model(model_name: str, task: Task, checkpoint: str | None, attn: str | None = None,
                cache: WarmCache | None = None, head_style: str = "transformers", dropout: float | None = None,
                transfer: str = "finetune"):
    """(model, hand-off report). The classifier is initialised from the current RNG state, so
    seed before calling for a reproducible head."""
    base = resolve_model(model_name)
    study_head = uses_study_head(task, head_style, transfer)
    if dropout is not None and not study_head:
        raise StiltsError(f"dropout = {dropout} is the output dropout of jiant's heads; {task.name} runs transformers' own head",
                          'set head_style = "jiant" for this run, or leave dropout out')
    if study_head:
        from stilts_tui.train.heads import build_head_model

        model = build_head_model(task, base, JIANT_DROPOUT if dropout is None else dropout, attn, transfer == "frozen_mix")
    else:
        model = _from_pretrained(task, base, attn, cache)
    prefix = str(model.base_model_prefix) + "."
    own_groups = sorted({_group(k, prefix) for k in model.state_dict()})
    if checkpoint is None:
        fresh = ["classifier"]
        report = {"source": "pretrained", "model": model_name, "to_head": task.head,
                  "kept": [g for g in own_groups if g not in fresh], "reinitialised": fresh,
                  "rule": "pretrained encoder, new classifier"}
        return model, report

    folder = Path(checkpoint)
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise StiltsError(f"{folder} is not a stilts intermediate checkpoint (no {META_FILE})", "re-run the intermediate task")
    meta = json.loads(meta_path.read_text())
    state = cache.state(folder) if cache is not None else None
    if state is None:
        state = load_checkpoint_state(folder)
    keep_head = (meta["head"] == "multiple_choice" and task.head == "multiple_choice"
                 and not study_head)
    carried = {"encoder"} | ({"pooler", "classifier"} if keep_head else set())
    selected = {k: v for k, v in state.items() if _group(k, prefix) in carried}
    if not any(_group(k, prefix) == "encoder" for k in selected):
        raise StiltsError(f"checkpoint {folder} holds no {prefix[:-1]} encoder weights",
                          f"the intermediate run used another architecture than {model_name}")
    missing, unexpected = model.load_state_dict(selected, strict=False)
    missing_encoder = [k for k in missing if _group(k, prefix) == "encoder" and "position_ids" not in k]
    if missing_encoder or unexpected:
        raise StiltsError(f"checkpoint {folder} does not fit {model_name}: missing {missing_encoder[:3]}, unexpected {unexpected[:3]}",
                          "use the same base model for the intermediate and the target runs")
    kept = [g for g in own_groups if g in carried]
    report = {
        "source": "intermediate", "checkpoint": str(folder), "intermediate_task": meta.get("task"),
        "from_head": meta["head"], "to_head": task.head, "kept": kept,
        "reinitialised": [g for g in own_groups if g not in carried and g == "classifier"],
        "from_pretrained": [g for g in own_groups if g not in carried and g == "pooler"],
        "rule": "MC -> MC: encoder, pooler and classifier carried over" if keep_head
        else f"{meta['head']} -> {task.head}: encoder carried over, new head",
    }
    return model, report


def save_checkpoint(model, tokenizer, task: Task, folder: Path, run_id: str) -> None:
    """Write atomically: a folder that exists is a complete checkpoint. A failed write (a full
    disk) removes its half-written folder, giving back the space it took."""
    import shutil

    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        inject("checkpoint", tmp)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        meta = {"head": task.head, "task": task.name, "num_choices": task.num_choices, "labels": list(task.labels),
                "run_id": run_id}
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)

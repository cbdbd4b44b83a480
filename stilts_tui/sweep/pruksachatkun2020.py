"""The second study's run settings (Pruksachatkun et al. 2020), by task and role, as jiant's
``taskmaster_v1`` branch ran them. A spec with ``study = "pruksachatkun2020"`` takes them as its task
defaults; ``[tasks.X]`` still overrides them. Line numbers are that branch's.

Roles: an *intermediate* trains in jiant's pretrain phase (``first_intermediate_exp``), where
task-specific trainer settings are ignored (trainer.py l. 45-50): every intermediate validates every
5,000 steps, at most 10,000 times, for 10 epochs (base_roberta.conf l. 27, 32-33). A *target*, a
*probe* and a *baseline* (a target or probe trained straight from the pretrained model,
``first_target_exp``) train in the target phase, where a task's own ``val_interval``, ``max_vals``
and ``max_epochs`` win over ``target_train_val_interval = 5000`` (base_roberta.conf l. 34),
``target_train_max_vals = 1000`` (defaults.conf l. 384) and ``max_epochs = 10``
(``config.get_task_attr``, utils/config.py l. 102-112)."""

from __future__ import annotations

from typing import Any, Literal

Role = Literal["intermediate", "target", "probe", "baseline_target", "baseline_probe"]
NAME = "pruksachatkun2020"

# transfer_analysis.sh l. 21-36: configuration index -> (lr, dropout)
CONFIGS: dict[int, tuple[float, float]] = {
    0: (2e-5, 0.2), 1: (2e-5, 0.1), 2: (1e-5, 0.2), 3: (1e-5, 0.1),
    4: (5e-6, 0.2), 5: (5e-6, 0.1), 6: (3e-6, 0.2), 7: (3e-6, 0.1), 8: (1e-3, 0.2), 9: (1e-3, 0.1),
}
# INTERM_HPARAM / INTERM_BSIZE (l. 82-125): (configuration, batch). The targets' entries are what
# their baselines use (first_target_exp via ez_first_target_exp, l. 378-381).
INTERMEDIATE: dict[str, tuple[int, int]] = {
    "sst2": (7, 64), "socialiqa": (0, 4), "qqp": (5, 8), "mnli": (6, 4), "scitail": (4, 4), "qasrl": (7, 4),
    "qamr": (3, 4), "cosmosqa": (6, 4), "hellaswag": (6, 4), "commonsenseqa": (6, 4),
    "rte": (4, 4), "boolq": (7, 4), "cb": (2, 4), "copa": (5, 32), "multirc": (0, 4), "record": (2, 4),
    "wic_span": (3, 32), "wsc": (5, 32),
}
# TARGET_HPARAM / TARGET_BSIZE (l. 126-149)
TARGET: dict[str, tuple[int, int]] = {
    "rte": (4, 4), "boolq": (7, 4), "cb": (2, 4), "copa": (5, 32), "multirc": (0, 4), "record": (2, 4),
    "wic_span": (3, 32), "wsc": (5, 32), "commonsenseqa": (6, 4), "cosmosqa": (7, 4),
}
# PROBING_HPARAM / PROBING_BSIZE (l. 150-203)
PROBE: dict[str, tuple[int, int]] = {
    "edges_ner": (0, 8), "edges_srl": (0, 8), "edges_coref": (2, 8), "edges_spr1": (1, 32), "edges_spr2": (5, 4),
    "edges_dpr": (5, 4), "edges_rel_semeval": (1, 4), "se_word_content": (0, 64), "se_tree_depth": (1, 64),
    "se_top_constituents": (0, 64), "se_bigram_shift": (2, 64), "se_past_present": (2, 64),
    "se_subj_number": (0, 64), "se_obj_number": (4, 64), "se_odd_man_out": (3, 64),
    "se_coordination_inversion": (0, 64), "edges_pos": (1, 8), "edges_nonterminal": (4, 8), "edges_dep": (0, 4),
    "se_sentence_length": (0, 64), "acceptability_wh": (3, 4), "acceptability_def": (0, 4),
    "acceptability_conj": (1, 4), "acceptability_eos": (3, 4), "cola": (5, 4),
}
# MIXING_HPARAM / MIXING_BSIZE (l. 204-257): the probes read through a frozen encoder's scalar mix
# (transfer = "frozen_mix"; hyperparameter_sweep_mix, l. 300-317, searched configurations 0-9).
MIXING: dict[str, tuple[int, int]] = {
    "edges_ner": (1, 16), "edges_srl": (0, 16), "edges_coref": (1, 16), "edges_spr1": (1, 16), "edges_spr2": (1, 16),
    "edges_dpr": (0, 16), "edges_rel_semeval": (1, 16), "se_word_content": (9, 128), "se_tree_depth": (9, 128),
    "se_top_constituents": (8, 128), "se_bigram_shift": (9, 128), "se_past_present": (2, 128),
    "se_subj_number": (9, 128), "se_obj_number": (9, 128), "se_odd_man_out": (9, 128),
    "se_coordination_inversion": (1, 128), "edges_pos": (8, 128), "edges_nonterminal": (9, 128), "edges_dep": (8, 128),
    "se_sentence_length": (9, 16), "acceptability_wh": (8, 4), "acceptability_def": (8, 4),
    "acceptability_conj": (8, 4), "acceptability_eos": (7, 4), "cola": (9, 16),
}
# base_roberta.conf l. 24, 26, 28: what a run gets when transfer_analysis.sh names no configuration
# (CCG, whose INTERM_HPARAM entry is missing from the release).
UNLISTED: dict[str, Any] = {"lr": 1e-5, "dropout": 0.1, "batch_size": 4}

# Every run: max_seq_len 256 (base_roberta.conf l. 8, base_edgeprobe.conf l. 20), patience 20
# validations (l. 31 / l. 13), validation on the first 5,000 dev examples and clipping of the whole
# gradient at norm 5 (defaults.conf l. 150, 158), jiant's heads.
COMMON: dict[str, Any] = {"max_length": 256, "patience": 20, "val_data_limit": 5000, "max_grad_norm": 5.0,
                          "head_style": "jiant"}
# How jiant's trainer ran them (docs/pruksachatkun2020.md): patience counted as _check_history
# counts it (trainer.py l. 253-274: 21 validations for patience 20), training on past the epoch
# limit to the validation after it (l. 1012-1024, where t_total ends, l. 351-362), AllenNLP
# 0.8.4's BucketIterator batches (l. 318-331) and jiant's own inputs (tasks/jiant_inputs.py).
JIANT_TRAINER: dict[str, Any] = {"patience_count": "jiant", "stop_at": "next_validation",
                                 "batching": "allennlp_bucket", "inputs": "jiant"}
COMMON |= JIANT_TRAINER
# base_roberta.conf l. 25 (bert_adam), trainer.py l. 126-130 (warmup 0.1); BertAdam's own e = 1e-6
# and weight_decay = 0.01 (pytorch-pretrained-bert 0.6.2), which jiant does not override.
BERT_ADAM: dict[str, Any] = {"optimizer": "bert_adam", "warmup_ratio": 0.1, "adam_eps": 1e-6, "weight_decay": 0.01}
# base_edgeprobe.conf sets no optimizer: defaults.conf l. 141 "adam", built as AMSGrad (trainer.py
# l. 123-125), constant rate, torch's eps, no weight decay.
AMSGRAD: dict[str, Any] = {"optimizer": "amsgrad", "warmup_ratio": 0.0, "adam_eps": 1e-8, "weight_decay": 0.0}

PRETRAIN_PHASE: dict[str, Any] = {"val_interval": 5000, "max_vals": 10000, "epochs": 10}
TARGET_PHASE: dict[str, Any] = {"val_interval": 5000, "max_vals": 1000, "epochs": 10}
# Task-specific target-phase settings (base_roberta.conf l. 44-85).
TARGET_PHASE_TASKS: dict[str, dict[str, Any]] = {
    "copa": {"val_interval": 100, "epochs": 40}, "rte": {"val_interval": 625}, "boolq": {"val_interval": 2400},
    "cb": {"val_interval": 60, "epochs": 40}, "multirc": {"val_interval": 1000}, "wic_span": {"val_interval": 1000},
    "wsc": {"val_interval": 130, "epochs": 40}, "commonsenseqa": {"val_interval": 2500},
    "acceptability_conj": {"val_interval": 91}, "acceptability_def": {"val_interval": 101},
    "acceptability_eos": {"val_interval": 95}, "acceptability_wh": {"val_interval": 416},
}
# Edge probing runs from base_edgeprobe.conf, which sets no max_epochs (defaults.conf l. 168: -1,
# no limit): max_vals x val_interval steps end them (defaults.conf l. 467-500: edges-tmpl-large
# 250 x 1,000 for the OntoNotes tasks and UD, edges-tmpl-small 100 x 100 for SPR1, SPR2, DPR and
# SemEval). stilts needs an epoch count; one far past those steps leaves the bound to max_vals.
NO_EPOCH_LIMIT = 10_000
EDGE_LARGE = {"val_interval": 1000, "max_vals": 250, "epochs": NO_EPOCH_LIMIT}
EDGE_SMALL = {"val_interval": 100, "max_vals": 100, "epochs": NO_EPOCH_LIMIT}
EDGE_PHASE: dict[str, dict[str, Any]] = {
    **{t: EDGE_LARGE for t in ("edges_pos", "edges_nonterminal", "edges_ner", "edges_srl", "edges_coref", "edges_dep")},
    **{t: EDGE_SMALL for t in ("edges_spr1", "edges_spr2", "edges_dpr", "edges_rel_semeval")},
}

# SEED_DICT (l. 258-271): restart i's intermediate, its targets (run*_stilts) and its probes.
SEEDS: dict[str, list[int]] = {
    "intermediate": [1111001, 523821, 921], "target": [1111002, 523822, 922], "probe": [1111003, 523823, 923],
}


def _choice(role: Role, task: str, mixing: bool = False) -> tuple[int, int] | None:
    if mixing and role in ("probe", "baseline_probe", "target", "baseline_target"):
        return MIXING.get(task)
    table = {"intermediate": INTERMEDIATE, "target": TARGET, "probe": PROBE,
             "baseline_target": INTERMEDIATE, "baseline_probe": PROBE}[role]
    return table.get(task)


def settings(role: Role, task: str, mixing: bool = False) -> dict[str, Any]:
    """Every RunConfig value the study fixes for ``task`` in ``role`` (``mixing``: read through a
    frozen encoder's scalar mix, with the mixing sweep's choices)."""
    choice = _choice(role, task, mixing)
    if choice is None:
        chosen = dict(UNLISTED)
    else:
        lr, dropout = CONFIGS[choice[0]]
        chosen = {"lr": lr, "dropout": dropout, "batch_size": choice[1]}
    if role == "intermediate":
        phase = PRETRAIN_PHASE
    elif task in EDGE_PHASE:
        phase = EDGE_PHASE[task]
    else:
        phase = TARGET_PHASE | TARGET_PHASE_TASKS.get(task, {})
    optimizer = AMSGRAD if task in EDGE_PHASE and role != "intermediate" else BERT_ADAM
    return COMMON | optimizer | phase | chosen


def unlisted(role: Role, task: str, mixing: bool = False) -> str | None:
    """A note when transfer_analysis.sh names no configuration for this task in this role."""
    if _choice(role, task, mixing) is not None:
        return None
    table = "MIXING_HPARAM" if mixing and role != "intermediate" else {
        "intermediate": "INTERM_HPARAM", "target": "TARGET_HPARAM", "probe": "PROBING_HPARAM",
        "baseline_target": "INTERM_HPARAM", "baseline_probe": "PROBING_HPARAM"}[role]
    what = role.replace("_", " ")
    return (f"{task} has no {table} entry in transfer_analysis.sh: as {'an' if what[0] in 'aeiou' else 'a'} {what} it takes "
            f"base_roberta.conf's lr {UNLISTED['lr']:g}, dropout {UNLISTED['dropout']:g}, batch {UNLISTED['batch_size']}")

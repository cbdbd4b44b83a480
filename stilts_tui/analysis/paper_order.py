"""The second study's figure layout (`--order paper`): its rows and columns in the order of
jiant taskmaster_v1's scripts/taskmaster_v1/plot_results.py (TARG_NAME_LIST l. 63-74,
PROB_NAME_LIST l. 75-101, INT_TASK_NAMES l. 102-114), under this tool's task names."""

from __future__ import annotations

TARGETS = ("cb", "copa", "wsc", "rte", "multirc", "wic_span", "boolq", "commonsenseqa", "cosmosqa", "record")
PROBES = ("edges_pos", "edges_ner", "edges_srl", "edges_coref", "edges_nonterminal", "edges_spr1", "edges_spr2",
          "edges_dpr", "edges_rel_semeval", "edges_dep", "se_sentence_length", "se_word_content", "se_tree_depth",
          "se_top_constituents", "se_bigram_shift", "se_past_present", "se_subj_number", "se_obj_number",
          "se_odd_man_out", "se_coordination_inversion", "cola", "acceptability_wh", "acceptability_def",
          "acceptability_conj", "acceptability_eos")
INTERMEDIATES = ("qamr", "commonsenseqa", "scitail", "cosmosqa", "socialiqa", "ccg", "hellaswag", "qasrl", "sst2",
                 "qqp", "mnli")


def in_order(names: set[str], order: tuple[str, ...]) -> list[str]:
    """`names` in the study's order; names it does not have follow, alphabetically."""
    return [n for n in order if n in names] + sorted(names - set(order))

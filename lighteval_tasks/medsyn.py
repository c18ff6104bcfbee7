"""
name:
MEDSYN

dataset:
$MEDSYN_DATASET (a built MEDSYN folder or Hub dataset id); default: MEDSYN-mini, built from the
embedded sample into ~/.cache/medsyn

abstract:
Complex clinical cases with interleaved multimodal evidence (labs, CT, MRI, microscopy, ECG):
differential diagnosis (DDx coverage, LLM or lexical judge), final-diagnosis multiple choice
(FDx accuracy, with parse failures) and Evidence Sensitivity (leave-one-CE-type-out posteriors).

languages:
english, chinese

tags:
medical, multimodal, multiple-choice, generation, vision

paper:
https://arxiv.org/abs/2602.21950

Run (the prompts, metrics and tasks live in the `medsyn` package; this file only lists them):
    medsyn lighteval custom "model_name=PATH,batch_size=8" lighteval_tasks/transformers_vlm.py \
        "medsyn:fdx_en|0,medsyn:es_en|0" --custom-tasks lighteval_tasks/medsyn.py
"""

from medsyn.eval.tasks import task_table

TASKS_TABLE = task_table()

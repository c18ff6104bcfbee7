"""LightEval custom-model file: transformers vision-language models with interleaved images and
option-letter posteriors (see `medsyn.eval.backends.transformers_vlm`).

    medsyn lighteval custom "model_name=Qwen/Qwen2.5-VL-7B-Instruct,batch_size=8" \
        lighteval_tasks/transformers_vlm.py "medsyn:fdx_en|0" --custom-tasks lighteval_tasks/medsyn.py
"""

from medsyn.eval.backends.transformers_vlm import MedsynVLM

__all__ = ["MedsynVLM"]

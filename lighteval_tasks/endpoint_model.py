"""LightEval custom model file: MEDSYN's backend for any OpenAI-compatible chat endpoint.

    medsyn lighteval custom "model_name=MODEL,base_url=http://127.0.0.1:8000/v1,concurrency=16" \
        lighteval_tasks/endpoint_model.py TASKS --custom-tasks lighteval_tasks/<tasks file>.py

lighteval loads the first LightevalModel subclass it finds here, so this file
imports that one class and nothing else; the code lives in medsyn.eval.backends.endpoint.
"""

from medsyn.eval.backends.endpoint import EndpointModel

__all__ = ["EndpointModel"]

"""Gradio Space of the MEDSYN metric: pick a config, paste the compute() arguments as JSON, get the result.

evaluate's own ``launch_gradio_widget`` builds its form with Gradio 3 APIs (``gr.inputs``) that current
Gradio no longer has, so this Space builds a small form of its own around the same module.
"""

import json
from pathlib import Path

import evaluate
import gradio as gr

MODULE = str(Path(__file__).with_name("medsyn_metric.py"))
EXAMPLES = {
    "fdx": {"predictions": ["The answer is (B).", "答案：C", "I cannot tell."], "references": ["B", "A", "A"]},
    "ddx": {
        "predictions": ["1. Aortic dissection\n2. Acute MI - ST elevation", "1. Migraine\n2. Tension headache"],
        "references": ["Acute myocardial infarction", "Subarachnoid hemorrhage"],
        "judge": "lexical",
    },
    "evidence_sensitivity": {
        "predictions": [[0.7, 0.2, 0.1], [0.4, 0.4, 0.2], [0.6, 0.3, 0.1]],
        "references": [0, 0, 0],
        "case_ids": ["en-0001", "en-0001", "en-0001"],
        "conditions": ["full", "absent:ct", "text:ct"],
    },
}


def compute(config: str, arguments: str) -> dict:
    """Run the module's ``config`` on the JSON ``arguments``; errors are shown, not raised."""
    try:
        return evaluate.load(MODULE, config).compute(**json.loads(arguments))
    except (ValueError, TypeError, KeyError) as error:
        return {"error": str(error)}


def build_demo() -> gr.Blocks:
    """The Space's page."""
    with gr.Blocks(title="MEDSYN metric") as demo:
        gr.Markdown(Path(__file__).with_name("README.md").read_text(encoding="utf-8").split("---", 2)[2])
        config = gr.Dropdown(list(EXAMPLES), value="fdx", label="config")
        arguments = gr.Code(json.dumps(EXAMPLES["fdx"], ensure_ascii=False, indent=1), language="json", label="compute() arguments")
        result = gr.JSON(label="result")
        config.change(lambda c: json.dumps(EXAMPLES[c], ensure_ascii=False, indent=1), config, arguments)
        gr.Button("Compute").click(compute, [config, arguments], result)
    return demo


if __name__ == "__main__":
    build_demo().launch()

"""GLM-4V specifics the family matrix does not show by itself: the published GLM-4.1V-Thinking and GLM-4.5V templates
end the prompt at ``<|assistant|>`` (the model opens its reasoning block itself, so ES is not refused for them and a
reasoning model shows as low letter mass), while a GLM template that opens ``<think>`` after the prompt is refused for
ES with a message that names the reason and the case."""

from __future__ import annotations

import pytest
from tiny_vlms.glm4v import GLM41V_GENERATION, GLM41V_TEMPLATE, GLM45V_TEMPLATE, THINKING_GENERATION, glm4v

from medsyn.eval.backends.transformers_vlm import MedsynVLM, ReasoningTemplateError, VLMConfig, opens_reasoning
from medsyn.eval.synthetic import synthetic_rows
from medsyn.eval.tasks import make_doc


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> MedsynVLM:
    folder = glm4v(tmp_path_factory.mktemp("glm4v"))
    return MedsynVLM(VLMConfig(model_name=str(folder), device="cpu", dtype="float32", use_response_cache=False))


def test_the_published_templates_do_not_open_think_after_the_prompt(backend: MedsynVLM) -> None:
    try:
        for template in (GLM41V_TEMPLATE, GLM45V_TEMPLATE):
            backend.processor.chat_template = template
            assert not opens_reasoning(backend.processor)
    finally:
        backend.processor.chat_template = GLM41V_TEMPLATE


def test_a_template_that_opens_think_is_refused_for_es_with_the_reason(backend: MedsynVLM) -> None:
    doc = make_doc(synthetic_rows(1, 4, 64, 20)[0], "full", "es", "t:es")
    assert GLM41V_TEMPLATE.count(GLM41V_GENERATION) == 1
    backend.processor.chat_template = GLM41V_TEMPLATE.replace(GLM41V_GENERATION, THINKING_GENERATION)
    try:
        with pytest.raises(ReasoningTemplateError, match=rf"opens a <think> block.*{doc.specific['case_id']} \[full\]"):
            backend.loglikelihood([doc])
    finally:
        backend.processor.chat_template = GLM41V_TEMPLATE
    assert len(backend.loglikelihood([doc])[0].logprobs) == len(doc.choices)


def test_enable_thinking_false_reaches_the_template_and_closes_the_reasoning_block(tmp_path) -> None:
    from tiny_vlms import BUILDERS

    folder = str(BUILDERS["glm4v_moe"](tmp_path / "glm45v"))
    settings = dict(model_name=folder, device="cpu", dtype="float32", use_response_cache=False)
    thinking, answering = MedsynVLM(VLMConfig(**settings)), MedsynVLM(VLMConfig.from_args(f"model_name={folder},enable_thinking=false,device=cpu,dtype=float32"))
    doc = make_doc(synthetic_rows(1, 4, 64, 10)[0], "full", "es", "t:es")
    assert "<think></think>" not in thinking.rendered(doc)
    assert answering.rendered(doc).rstrip().endswith("<think></think>")
    assert not opens_reasoning(answering.processor, **answering.prompter.template_kwargs)
    assert answering.loglikelihood([doc])[0].logprobs

"""MEDSYN leaderboard: the Gradio Space (and the same app run locally).

Only the results location differs between a local run and the Space:
``MEDSYN_RESULTS_DIR`` (a folder of §7 results files) or ``MEDSYN_RESULTS_REPO`` (a Hub dataset
repo of them); without either, ``results/`` next to this file. Submissions that pass the checks
go to ``MEDSYN_PENDING_DIR`` (default ``pending/`` next to this file) for a maintainer's review.
The data side lives in :mod:`medsyn.publish.leaderboard`; this file only lays out the UI.
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402

from medsyn.metrics.results_schema import MODEL_TYPES, RESULT_LANGUAGES  # noqa: E402
from medsyn.publish import leaderboard as lb  # noqa: E402

HERE = Path(__file__).resolve().parent
DATASETS_FILE = Path(os.environ.get("MEDSYN_DATASETS", HERE / "datasets.json"))
PENDING_DIR = Path(os.environ.get("MEDSYN_PENDING_DIR", HERE / "pending"))

INTRO = f"""# MEDSYN leaderboard
Multilingual, multimodal clinical cases ([arXiv 2602.21950](https://arxiv.org/abs/2602.21950)).
**DDx coverage**: share of cases whose differential has an item the judge scores ≥ 4 of 5.
**FDx accuracy**: multiple-choice final diagnosis. **DDx–FDx gap** = DDx coverage − FDx accuracy.
**Parse failures** are answers with no unambiguous option (counted wrong, never guessed).
**ES gap** = Evidence Sensitivity as text − as images (macro mean over CE types).
Intervals are the ones recorded in each results file. The *{lb.PHYSICIANS['name']}* row is the
paper's published figure for senior physicians on the English subset: {lb.REPORTED}.
Compare rows on the same dataset only (see the Dataset column)."""

DATATYPES = ["number" if column in lb.NUMBER_COLUMNS else "str" for column in lb.COLUMNS]
WIDE = {"Model": "220px", "Type": "110px", "Dataset": "150px", "Provenance": "230px"}
COLUMN_WIDTHS = [WIDE.get(c, "110px" if c.endswith("CI (%)") or c == "ES gap CI" else "80px") for c in lb.COLUMNS]


def _tables(board: lb.Board, types: list[str], sizes: list[str]) -> list:
    return [lb.display_table(lb.filter_table(lb.build_table(board, lang), types, sizes)) for lang in RESULT_LANGUAGES]


def _plots(board: lb.Board, types: list[str], sizes: list[str], language: str, key: str | None) -> list:
    board = lb.filter_board(board, types, sizes)
    return [lb.plot_ddx_vs_fdx(board, language), lb.plot_es_by_type(board, key, language),
            lb.plot_es_gap_vs_fdx(board, language)]


def _problems_text(board: lb.Board) -> str:
    return "\n".join(board.problems) or "None: every results file was read."


def build_app(board: lb.Board) -> gr.Blocks:
    """The leaderboard UI over ``board``; the Reload button reads the results location again."""
    known = lb.load_known_datasets(DATASETS_FILE)
    types, sizes = list(MODEL_TYPES), list(lb.SIZE_BUCKETS)
    keys = [entry.key for entry in board.entries]
    with gr.Blocks(title="MEDSYN leaderboard") as demo:
        state = gr.State(board)
        gr.Markdown(INTRO)
        with gr.Row():
            type_filter = gr.CheckboxGroup(types, value=types, label="Model type")
            size_filter = gr.CheckboxGroup(sizes, value=sizes, label="Model size (billions of parameters)")
            reload_button = gr.Button("Reload results", scale=0)
        tables = []
        with gr.Tabs():
            for lang, table in zip(RESULT_LANGUAGES, _tables(board, types, sizes)):
                with gr.Tab(lb.LANGUAGE_NAMES[lang]):
                    tables.append(gr.Dataframe(value=table, datatype=DATATYPES, interactive=False,
                                               show_search="search", wrap=True, column_widths=COLUMN_WIDTHS,
                                               elem_id=f"table-{lang}"))
            with gr.Tab("Plots"):
                with gr.Row():
                    plot_language = gr.Radio([(lb.LANGUAGE_NAMES[l], l) for l in RESULT_LANGUAGES], value="en",
                                             label="Language")
                    model_choice = gr.Dropdown(keys, value=keys[0] if keys else None, label="Model (ES by CE type)")
                first = _plots(board, types, sizes, "en", keys[0] if keys else None)
                plots = [gr.Plot(value=first[0], label="DDx coverage vs FDx accuracy", elem_id="plot-ddx-fdx"),
                         gr.Plot(value=first[1], label="ES image vs text by CE type", elem_id="plot-es-type"),
                         gr.Plot(value=first[2], label="ES gap vs FDx accuracy", elem_id="plot-es-gap")]
            with gr.Tab("Submit"):
                gr.Markdown(f"Upload a results file (`results.json` of `medsyn eval`, at most "
                            f"{lb.MAX_SUBMISSION_BYTES:,} bytes). It is checked, then kept for review; "
                            "it is not added to the table directly.")
                upload = gr.File(label="Results file", file_types=[".json"], type="filepath", elem_id="submission-file")
                submit_button = gr.Button("Submit for review", variant="primary")
                verdict = gr.Textbox(label="Submission result", interactive=False, lines=6, elem_id="verdict")
        problems = gr.Textbox(_problems_text(board), label="Results files left out", interactive=False,
                              lines=3, visible=bool(board.problems))

        filters = [state, type_filter, size_filter]
        plot_inputs = [*filters, plot_language, model_choice]
        for control in (type_filter, size_filter):
            control.change(_tables, filters, tables)
        for control in (type_filter, size_filter, plot_language, model_choice):
            control.change(_plots, plot_inputs, plots)
        submit_button.click(lambda path: lb.submit(path, PENDING_DIR, known)[1], upload, verdict)

        def reload(types_now: list[str], sizes_now: list[str], language: str) -> list:
            fresh = lb.load_board(default_dir=HERE / "results")
            new_keys = [entry.key for entry in fresh.entries]
            key = new_keys[0] if new_keys else None
            return [fresh, *_tables(fresh, types_now, sizes_now), gr.Dropdown(choices=new_keys, value=key),
                    *_plots(fresh, types_now, sizes_now, language, key), gr.Textbox(_problems_text(fresh), visible=bool(fresh.problems))]

        reload_button.click(reload, [type_filter, size_filter, plot_language],
                            [state, *tables, model_choice, *plots, problems])
    return demo


demo = build_app(lb.load_board(default_dir=HERE / "results"))

if __name__ == "__main__":
    demo.launch(max_file_size=10 * lb.MAX_SUBMISSION_BYTES)

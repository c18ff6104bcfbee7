"""MEDSYN leaderboard: the Gradio Space (and the same app run locally).

Only the environment differs between a local run and the Space. Results: ``MEDSYN_RESULTS_DIR`` (a folder
of §7 results files, a ``medsyn eval`` output folder included) or ``MEDSYN_RESULTS_REPO`` (the results
dataset on the Hub); without either, ``results/`` next to this file. Submissions that pass the checks are
committed as PENDING to ``MEDSYN_REQUESTS_REPO`` (the requests dataset, written with the Space's
``HF_TOKEN`` secret); on a local run without it, to ``MEDSYN_PENDING_DIR`` (default ``pending/`` here).
A maintainer accepts or rejects them with ``medsyn leaderboard accept|reject ID --reason ...``.
The data side lives in :mod:`medsyn.publish.leaderboard` and :mod:`medsyn.publish.review`; this file only
lays out the UI.
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402
import pandas as pd  # noqa: E402

from medsyn.metrics.results_schema import MODEL_TYPES, RESULT_LANGUAGES  # noqa: E402
from medsyn.publish import leaderboard as lb  # noqa: E402
from medsyn.publish import review  # noqa: E402
from medsyn.publish.hub import HubError  # noqa: E402

HERE = Path(__file__).resolve().parent
DATASETS_FILE = Path(os.environ.get("MEDSYN_DATASETS", HERE / "datasets.json"))
PENDING_DIR = HERE / "pending"
"""The local fallback for submissions when neither MEDSYN_REQUESTS_REPO nor MEDSYN_PENDING_DIR is set."""

INTRO = f"""# MEDSYN leaderboard
Multilingual, multimodal clinical cases ([arXiv 2602.21950](https://arxiv.org/abs/2602.21950)).
**DDx coverage**: share of cases whose differential has an item the judge scores ≥ 4 of 5.
**FDx accuracy**: multiple-choice final diagnosis. **DDx–FDx gap** = DDx coverage − FDx accuracy.
**Parse failures** are answers with no unambiguous option (counted wrong, never guessed).
**ES gap** = Evidence Sensitivity as text − as images (macro mean over CE types).
Intervals are the ones recorded in each results file (newer files: Wilson score for the rates, a case
bootstrap for ES gap). Under each table, Spearman's ρ of ES gap and FDx accuracy across the models shown,
with a Fisher-z 95 % interval (n/a below 3 models). The *{lb.PHYSICIANS['name']}* row is the
paper's published figure for senior physicians on the English subset, at the precision it was reported:
{lb.REPORTED}. Compare rows on the same dataset only (tick *Dataset* under *Columns*). *Columns* shows or hides groups of
columns; *Model detail* shows one model's Evidence Sensitivity per CE type, FDx per condition and its run."""

WIDTHS = {"Model": "170px", "Type": "112px", "Dataset": "120px", "n": "56px", "DDx CI (%)": "104px",
          "FDx CI (%)": "104px", "ES gap CI": "112px", "Provenance": "220px"}
"""Wide enough for each header's longest word ("proprietary", "0.000194" in the rest, which take 86px), so
headers wrap between words only; intervals wrap at their dash."""


def _columns(groups: list[str]) -> tuple[list[str], list[str]]:
    """(datatypes, widths) of the columns shown for ``groups``."""
    shown = lb.visible_columns(groups)
    return (["number" if c in lb.NUMBER_COLUMNS else "str" for c in shown], [WIDTHS.get(c, "86px") for c in shown])


def _table_values(board: lb.Board, types: list[str], sizes: list[str], groups: list[str]) -> list[pd.DataFrame]:
    return [lb.display_table(lb.filter_table(lb.build_table(board, lang), types, sizes), groups) for lang in RESULT_LANGUAGES]


def _tables(board: lb.Board, types: list[str], sizes: list[str], groups: list[str]) -> list:
    """The three tables as updates: values, and the datatypes and widths of the columns shown."""
    datatypes, widths = _columns(groups)
    return [gr.Dataframe(value=table, datatype=datatypes, column_widths=widths)
            for table in _table_values(board, types, sizes, groups)]


def _correlations(board: lb.Board, types: list[str], sizes: list[str]) -> list[str]:
    shown = lb.filter_board(board, types, sizes)
    return [lb.correlation_line(shown, lang) for lang in RESULT_LANGUAGES]


def _plots(board: lb.Board, types: list[str], sizes: list[str], language: str) -> list:
    board = lb.filter_board(board, types, sizes)
    return [lb.plot_ddx_vs_fdx(board, language), _es_gap_plot(board, language)]


def _es_gap_plot(board: lb.Board, language: str):
    """The ES gap vs FDx plot with Spearman's rho over the models shown and its bootstrap interval over models."""
    fig = lb.plot_es_gap_vs_fdx(board, language)
    r = lb.correlation(board, language)
    ci = "n/a" if r["bootstrap_ci"] is None else f"{r['bootstrap_ci'][0]:.2f} to {r['bootstrap_ci'][1]:.2f}"
    if r["rho"] is None:
        text = f"Spearman ρ: n/a (n = {r['n']}; it needs 3 models with differing values)"
    else:
        text = f"Spearman ρ = {r['rho']:.2f} (bootstrap 95 % CI over models {ci}), n = {r['n']}"
    fig.axes[0].text(0.01, 0.01, text, transform=fig.axes[0].transAxes, fontsize=8, va="bottom")
    return fig


def _detail(board: lb.Board, key: str | None, language: str) -> list:
    """The detail tab for one model: ES per CE type (table and plot), FDx per condition, the run."""
    entry = board.entry(key) if key else None
    if entry is None:
        empty = pd.DataFrame()
        return [empty, lb.plot_es_by_type(board, None, language), empty, empty]
    return [lb.es_detail(entry, language), lb.plot_es_by_type(board, key, language),
            lb.conditions_detail(entry, language), lb.run_detail(entry, language)]


def _problems_text(board: lb.Board) -> str:
    return "\n".join(board.problems) or "None: every results file was read."


def _status() -> list:
    """The Submissions tab: every request with its status, and what could not be read."""
    try:
        with review.requests_store(os.environ, PENDING_DIR) as store:
            records, problems = review.list_requests(store)
    except (HubError, OSError) as error:
        return [review.status_table([]), f"The requests dataset could not be read: {error}"]
    return [review.status_table(records), "\n".join(problems) or "Every request was read."]


def _submit(known: lb.KnownDatasets, path: str | None, note: str) -> str:
    try:
        with review.requests_store(os.environ, PENDING_DIR) as store:
            return lb.submit(path, store, known, note or "")[1]
    except HubError as error:  # no token, offline, or a Space without a requests dataset
        return lb.not_saved(error)


def build_app(board: lb.Board) -> gr.Blocks:
    """The leaderboard UI over ``board``; the Reload button reads the results and the requests again."""
    known = lb.load_known_datasets(DATASETS_FILE)
    types, sizes, groups = list(MODEL_TYPES), list(lb.SIZE_BUCKETS), list(lb.DEFAULT_GROUPS)
    keys = [entry.key for entry in board.entries]
    first_key = keys[0] if keys else None
    languages = [(lb.LANGUAGE_NAMES[lang], lang) for lang in RESULT_LANGUAGES]
    with gr.Blocks(title="MEDSYN leaderboard", fill_width=True) as demo:
        state = gr.State(board)
        gr.Markdown(INTRO)
        with gr.Row():
            type_filter = gr.CheckboxGroup(types, value=types, label="Model type")
            size_filter = gr.CheckboxGroup(sizes, value=sizes, label="Model size (billions of parameters)")
            column_filter = gr.CheckboxGroup(list(lb.COLUMN_GROUPS), value=groups, label="Columns", elem_id="columns")
            reload_button = gr.Button("Reload results", scale=0)
        tables, correlations = [], []
        datatypes, widths = _columns(groups)
        with gr.Tabs():
            for lang, table, line in zip(RESULT_LANGUAGES, _table_values(board, types, sizes, groups),
                                         _correlations(board, types, sizes)):
                with gr.Tab(lb.LANGUAGE_NAMES[lang]):
                    tables.append(gr.Dataframe(value=table, datatype=datatypes, interactive=False, show_search="search",
                                               wrap=True, column_widths=widths, elem_id=f"table-{lang}",
                                               elem_classes="board"))
                    correlations.append(gr.Markdown(line, elem_id=f"correlation-{lang}"))
            with gr.Tab("Model detail"):
                with gr.Row():
                    model_choice = gr.Dropdown(keys, value=first_key, label="Model", elem_id="detail-model")
                    detail_language = gr.Radio(languages, value="en", label="Language")
                shown = _detail(board, first_key, "en")
                with gr.Row():
                    detail = [gr.Dataframe(shown[0], label="Evidence Sensitivity by CE type", interactive=False,
                                           elem_id="detail-es")]
                    detail.append(gr.Plot(shown[1], label="ES as images vs as text by CE type", elem_id="plot-es-type"))
                with gr.Row():
                    detail.append(gr.Dataframe(shown[2], label="FDx accuracy by condition", interactive=False,
                                               elem_id="detail-conditions"))
                    detail.append(gr.Dataframe(shown[3], label="Failures and run", interactive=False, wrap=True,
                                               elem_id="detail-run"))
            with gr.Tab("Plots"):
                plot_language = gr.Radio(languages, value="en", label="Language")
                first = _plots(board, types, sizes, "en")
                plots = [gr.Plot(value=first[0], label="DDx coverage vs FDx accuracy", elem_id="plot-ddx-fdx"),
                         gr.Plot(value=first[1], label="ES gap vs FDx accuracy", elem_id="plot-es-gap")]
            with gr.Tab("Submit"):
                gr.Markdown(f"Upload a results file (`results.json` of `medsyn eval`, at most "
                            f"{lb.MAX_SUBMISSION_BYTES:,} bytes). It is checked, then queued for a maintainer's "
                            "review; it is not added to the table directly. The *Submissions* tab shows its status.")
                upload = gr.File(label="Results file", file_types=[".json"], type="filepath", elem_id="submission-file")
                note = gr.Textbox(label=f"Note for the maintainers (optional, at most {review.MAX_NOTE} characters)",
                                  max_length=review.MAX_NOTE, elem_id="submission-note")
                submit_button = gr.Button("Submit for review", variant="primary")
                verdict = gr.Textbox(label="Submission result", interactive=False, lines=6, elem_id="verdict")
            with gr.Tab("Submissions"):
                status_now = _status()
                status_table = gr.Dataframe(status_now[0], label="Submissions (newest first)", interactive=False,
                                            wrap=True, elem_id="status-table")
                status_note = gr.Textbox(status_now[1], label="Requests dataset", interactive=False, lines=1,
                                         elem_id="status-note")
        problems = gr.Textbox(_problems_text(board), label="Results files left out", interactive=False,
                              lines=3, visible=bool(board.problems))

        filters = [state, type_filter, size_filter]
        for control in (type_filter, size_filter, column_filter):
            control.change(_tables, [*filters, column_filter], tables)
        for control in (type_filter, size_filter):
            control.change(_correlations, filters, correlations)
        for control in (type_filter, size_filter, plot_language):
            control.change(_plots, [*filters, plot_language], plots)
        for control in (model_choice, detail_language):
            control.change(_detail, [state, model_choice, detail_language], detail)
        submit_button.click(lambda path, text: _submit(known, path, text), [upload, note], verdict, api_name="submit")
        reload_button.click(_reload, [type_filter, size_filter, column_filter, model_choice, detail_language, plot_language],
                            [state, *tables, *correlations, model_choice, *detail, *plots, problems,
                             status_table, status_note], api_name="reload")
    return demo


def _reload(types: list[str], sizes: list[str], groups: list[str], key: str | None, detail_language: str,
            plot_language: str) -> list:
    """Read the results and the requests again; keep the model shown in detail when it is still there."""
    fresh = lb.load_board(default_dir=HERE / "results")
    keys = [entry.key for entry in fresh.entries]
    key = key if key in keys else (keys[0] if keys else None)
    return [fresh, *_tables(fresh, types, sizes, groups), *_correlations(fresh, types, sizes),
            gr.Dropdown(choices=keys, value=key), *_detail(fresh, key, detail_language),
            *_plots(fresh, types, sizes, plot_language),
            gr.Textbox(_problems_text(fresh), visible=bool(fresh.problems)), *_status()]


CSS = ".board th, .board th * { word-break: normal !important; overflow-wrap: normal !important; hyphens: none; }"
"""Headers wrap between words, never inside one ("coverag e"); the page takes the window's width (fill_width)."""

demo = build_app(lb.load_board(default_dir=HERE / "results"))

if __name__ == "__main__":
    demo.launch(max_file_size=10 * lb.MAX_SUBMISSION_BYTES, css=CSS)

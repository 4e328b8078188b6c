"""The JobsPanel in a marimo notebook, for tests/test_notebooks_browser.py (``marimo run``).

The sandbox is the test's own (its address, token and ids come in IJ_* environment variables);
two buttons let the test swap a 100,000-row frame in and out, what it does through the kernel
in Jupyter.
"""

import marimo

__generated_with = "0.25.2"
app = marimo.App(width="full")


@app.cell
def _():
    import os

    import marimo as mo
    import pandas as pd

    import intercom_jobs_nb as ij

    return ij, mo, os, pd


@app.cell
def _(ij, os):
    panel = ij.JobsPanel(os.environ["IJ_IDS"].split(","), base_url=os.environ["IJ_BASE_URL"])
    return (panel,)


@app.cell
def _(mo, panel):
    mo.ui.anywidget(panel)
    return


@app.cell
def _(mo, panel, pd):
    kept = {}

    def big(clicks):
        kept["df"] = df = panel.df
        rows = 100_000
        frame = pd.concat([df] * -(-rows // len(df)), ignore_index=True).iloc[:rows]
        panel.df = frame.assign(job_id=[str(10**7 + k) for k in range(rows)])
        return clicks + 1

    def back(clicks):
        panel.df = kept["df"]
        return clicks + 1

    # Global names: marimo acts on a UI element only when a global variable holds it.
    big_button = mo.ui.button(value=0, label="Show 100,000 rows", on_click=big)
    back_button = mo.ui.button(value=0, label="Back to the sandbox's rows", on_click=back)
    mo.hstack([big_button, back_button], justify="start")
    return big_button, back_button


if __name__ == "__main__":
    app.run()

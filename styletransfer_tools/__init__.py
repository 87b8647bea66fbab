"""The tools that stand beside the course's code (``styletransfer_utils.py``).

Each module imports the core; the core never imports them::

    cli.py          the `styletransfer` command: flags built from `Settings`, exit codes
    studio.py       notebook 06's studio: controls built from `Settings` that act during a run
    notebook.py     figures, the live preview and `notebook_settings` for the notebooks
    checkpoints.py  a features-only copy of the VGG19 weights, the ImageNet top-5 check
    files.py        writing images, figures and records whole or not at all
    snapshots.py    a picture every N steps, and a GIF timelapse of a run (a `stylize` callback)
    assignments.py  the course as nbgrader assignments: solutions, checks, answers (make student)
    grading.py      limits on what a submission's output can cost the grader (classroom/nbgrader_config.py)
    diagram.py      the overview diagram of the method, in the paper's notation (notebook 00)

      cli ──> checkpoints ──> files ──> styletransfer_utils (the core)
      cli ──────────────────> files
      studio ──> files ───────────────> styletransfer_utils
      notebook ───────────────────────> styletransfer_utils
      diagram ──> files ──────────────> styletransfer_utils
      assignments ──> files ──────────> styletransfer_utils
"""

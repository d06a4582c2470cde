"""Static HTML reports of ``mantra`` output folders (``mantra report OUT_DIR``; ``--report`` on detect, eval
and robustness): ``build`` reads what a run wrote, ``page`` makes the HTML, ``figures`` the pictures."""

from mantra_jax.report.build import (REPORT_DIR, REPORT_PAGE, ReportError, files_in_use, run_kinds,  # noqa: F401
                                     write_report)

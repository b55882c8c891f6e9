"""A report as an object: its rows, the text `crosscheck` prints, the JSON `--json` writes, and HTML, a fragment for
Jupyter (Report._repr_html_) or one self-contained page (`crosscheck --html`, Report.save_html)."""

import base64
import html
import io
import json
from dataclasses import asdict, dataclass, field

from crosscheck.report import summary


@dataclass
class Report:
    """One report: its rows (one per backend, the reference's first), the text `crosscheck` prints, and the JSON
    `crosscheck --json` writes. Shows itself in Jupyter as HTML (_repr_html_): the table, the notes and diagnoses,
    the verdict and the plot."""

    rows: list
    text: str
    data: dict
    runs: dict = field(repr=False, default_factory=dict)
    config: object = field(repr=False, default=None)

    @property
    def verdict(self):
        return self.data["verdict"]

    @property
    def agrees(self):
        """True where every compared backend agreed with the reference (the verdict's AGREE), False otherwise,
        NOT CHECKED included: nothing was compared."""
        return self.verdict.startswith("AGREE")

    @property
    def status(self):
        """The command's exit status for this report: 0, or 1 where it disagrees or diverged (summary.verdict)."""
        return summary.verdict(self.rows)[1]

    @property
    def diagnosis(self):
        """{backend: its diagnosis} for each disagreeing backend that has one."""
        return {r.backend: r.diagnosis for r in self.rows if r.diagnosis}

    @property
    def findings(self):
        """{backend: what failed, each failure's message} for each backend with one."""
        return {r.backend: list(r.problems) for r in self.rows if r.problems}

    def to_json(self):
        return json.dumps(self.data, indent=2)

    def assert_agrees(self):
        """Raise AssertionError carrying the whole report unless it agrees: for a test of your own."""
        if not self.agrees:
            raise AssertionError(self.text)

    def __str__(self):
        return self.text

    def plot_png(self):
        """The report's plot (loss curves, deviations) as PNG bytes; None without matplotlib or a run to draw."""
        if not self.runs or self.config is None:
            return None
        try:
            import matplotlib  # noqa: F401  (the report extra)
        except ModuleNotFoundError:
            return None
        buffer = io.BytesIO()
        summary.plot(buffer, self.rows, self.runs, self.config)
        return buffer.getvalue()

    def _repr_html_(self):
        return _fragment(self)

    def html(self):
        """One self-contained page: the table, every note, finding and diagnosis, the verdict, the plot embedded."""
        return (f"<!doctype html>\n<html><head><meta charset='utf-8'><title>crosscheck: {html.escape(self.verdict)}"
                f"</title><style>{STYLE}</style></head>\n<body>\n{_fragment(self)}\n</body></html>\n")

    def save_html(self, path):
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.html())


STYLE = ("body{font-family:system-ui,sans-serif;margin:1.5em;color:#222} table{border-collapse:collapse;"
         "font-size:13px} th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;white-space:nowrap}"
         " th{background:#f0f0f0} td.no{background:#fbd5d5;font-weight:bold} td.yes{background:#d9f2d9}"
         " pre{background:#f7f7f7;padding:.6em;white-space:pre-wrap;font-size:12px}"
         " .agree{color:#176317} .disagree{color:#a31515} img{max-width:100%}")
COLUMNS = (("backend", "backend"), ("version", "version"), ("device", "device"), ("final loss", "final_loss"),
           ("max |dgrad|", "gradient_deviation"), ("max |dautodiff|", "autodiff_deviation"),
           ("max |dloss|", "loss_deviation"), ("max |dparams|", "param_deviation"),
           ("first epoch out", "first_epoch_out"), ("diverged at", "diverged_at"), ("wall s", "wall_s"))


def _cell(value):
    if value is None:
        return "-"
    return f"{value:.3e}" if isinstance(value, float) else str(value)


def _fragment(report):
    """The report as HTML without the page around it (what a notebook shows)."""
    title = report.data.get("title", "cross-check")
    head = "".join(f"<th>{html.escape(name)}</th>" for name, _ in COLUMNS) + "<th>agrees</th>"
    body = []
    for row in report.rows:
        values = asdict(row)
        agrees = {True: ("yes", "yes"), False: ("NO", "no"), None: ("n/a", "")}[row.agree]
        body.append("<tr>" + "".join(f"<td>{html.escape(_cell(values[key]))}</td>" for _, key in COLUMNS)
                    + f"<td class='{agrees[1]}'>{agrees[0]}</td></tr>")
    said = [text for row in report.rows for text in (*row.notes, *row.problems, *([row.diagnosis] if row.diagnosis
                                                                                  else []))]
    png = report.plot_png()
    verdict_class = "agree" if report.agrees else "disagree"
    return "\n".join([
        f"<h3>{html.escape(title)}</h3>",
        f"<table><tr>{head}</tr>{''.join(body)}</table>",
        *(f"<pre>{html.escape(text)}</pre>" for text in said),
        f"<p class='{verdict_class}'><b>{html.escape(report.verdict)}</b></p>",
        *([f"<img alt='loss and deviation curves' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"]
          if png else []),
    ])

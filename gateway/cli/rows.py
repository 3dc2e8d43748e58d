"""Label/value lines in two aligned columns, for the status views.

Like ``rich.table.Table.grid`` (the labels padded to one width, two spaces, the value), but
a line ends where its value ends: a grid pads every line to the widest value, so piped
output (``status | grep``, logs, golden files) was full of trailing spaces.
"""

from __future__ import annotations

from collections.abc import Iterator

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions
from rich.text import Text

GAP = 2


class Rows:
    def __init__(self, label_style: str = "bold") -> None:
        self.label_style = label_style
        self.rows: list[tuple[Text, Text]] = []

    def add_row(self, label: str | Text, value: str | Text) -> None:
        label_text = Text(label, style=self.label_style) if isinstance(label, str) else label
        value_text = Text(value) if isinstance(value, str) else value
        self.rows.append((label_text, value_text))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        width = max((cell_len(label.plain) for label, _ in self.rows), default=0)
        indent = width + GAP
        for label, value in self.rows:
            if options.no_wrap:  # soft wrap (the CLI): one line per row, whatever its length
                parts = [value]
            else:  # wrapped values continue under the value column
                parts = list(value.wrap(console, max(options.max_width - indent, 10)))
            for i, part in enumerate(parts):
                line = Text()
                if i == 0:
                    line.append_text(label)
                    line.append(" " * (indent - cell_len(label.plain)))
                else:
                    line.append(" " * indent)
                line.append_text(part)
                line.rstrip()
                yield line

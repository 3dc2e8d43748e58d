"""Files shipped beside the code: the protocol schemas and the service templates.

Installed, they are the packages ``gateway.schemas`` and ``gateway.units`` (pyproject maps
the repository's ``schemas/`` and ``units/`` there). Run from a source checkout without
installing (``PYTHONPATH=. python -m bench``), those packages do not exist, so the same
files are read from the checkout's directories instead.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent


def read(package: str, directory: str, name: str) -> str:
    """``name`` from the installed ``package``, else from ``<checkout>/<directory>``.

    Raises FileNotFoundError naming both places when neither has it.
    """
    try:
        return resources.files(package).joinpath(name).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        pass
    source = CHECKOUT / directory / name
    try:
        return source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{name} is neither in the installed package {package} nor at {source}"
        ) from None

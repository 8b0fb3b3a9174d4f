"""README's measured numbers (and the docs that quote them) are what bench/readme.py makes of the committed results.

A number typed by hand between the markers, or a results file committed without regenerating the README,
fails here; `python -m bench.readme` mends both.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import readme
from bench.common.results import RESULTS_DIR


def test_every_generated_section_of_the_readme_matches_the_committed_results() -> None:
    text = readme.README.read_text()

    for name in readme.SECTIONS:
        assert readme.markers(name)[0] in text, f"README.md lacks the {name} section's markers"
    assert readme.render(text, RESULTS_DIR) == text, "README.md differs from its results: run python -m bench.readme"


@pytest.mark.parametrize("path", sorted(readme.QUOTED), ids=lambda path: path.name)
def test_the_docs_quote_the_same_numbers(path: Path) -> None:
    text = path.read_text()

    for name in readme.QUOTED[path]:
        assert readme.markers(name)[0] in text
        assert readme.replace_section(text, name, readme.SECTIONS[name](RESULTS_DIR)) == text, f"{path}: {name}"

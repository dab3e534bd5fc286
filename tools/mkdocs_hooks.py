"""mkdocs hooks: publish the RSGI specification and the benchmark report from where they live.

spec/ and benchmarks/ are top-level parts of the repository with their own READMEs; the site shows
them under the same paths (spec/rsgi.md, benchmarks/README.md, the charts and flame graphs in benchmarks/results/)
instead of keeping copies in docs/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = [
    'spec/README.md',
    'spec/rsgi.md',
    'spec/framework-authors.md',
    'spec/CHANGELOG.md',
    'spec/conformance/README.md',
    'spec/conformance/results/README.md',
    'benchmarks/README.md',
    'benchmarks/PROFILING.md',
    'benchmarks/results/*.png',
    'benchmarks/results/flamegraphs/README.md',
    'benchmarks/results/flamegraphs/*.svg',
]


def on_files(files: Files, config: Any, **_: Any) -> Files:
    for pattern in PUBLISHED:
        for path in sorted(ROOT.glob(pattern)):
            files.append(
                File(
                    path.relative_to(ROOT).as_posix(),
                    src_dir=str(ROOT),
                    dest_dir=config['site_dir'],
                    use_directory_urls=config['use_directory_urls'],
                )
            )
    return files

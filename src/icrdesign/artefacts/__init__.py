"""The files passed between stages: one typed reader and writer for each, and nothing else reads them.

One submodule per artefact family, each with its column list, dtypes, and ``read_*`` / ``write_*``:

- :mod:`icrdesign.artefacts.dataset` -- ``results/data/dataset.parquet`` and every stage's ``rejected.csv``
  columns for dataset rows;
- :mod:`icrdesign.artefacts.encoded` -- ``results/encoded/`` (array, index, representation, scaler);
- :mod:`icrdesign.artefacts.model` -- ``results/model/`` (file names, the split and the latent means);
- :mod:`icrdesign.artefacts.candidates` -- ``results/design/<case>/candidates.csv`` and its CIFs;
- :mod:`icrdesign.artefacts.design` -- the rest of a design case's folder (``metrics.json`` keys,
  ``rejected.csv``, ``funnel.json``);
- :mod:`icrdesign.artefacts.validation` -- per-candidate validation records and ``validation.csv``;
- :mod:`icrdesign.artefacts.tables` -- the shared typed-CSV plumbing (booleans, dtypes, column checks).

Every writer is atomic (:mod:`icrdesign.io`); every reader checks the columns it promises and names
the file when they are not there.
"""
